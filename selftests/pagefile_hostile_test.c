// SPDX-License-Identifier: GPL-2.0
/*
 * Hostile page files.  Each test writes a small image made here in
 * userspace (superblock, commit record, page table, device state and data
 * with the right crc32c, as docs/pagefile-format.md describes) to
 * /dev/ram1, spoils one thing in it, re-signs the crcs unless the crc is
 * the point, and checks that VMPF_IOC_RESTORE_OPEN refuses it with the
 * errno uapi/linux/vmpagefile.h documents (EINVAL a bad layout, EBADMSG a
 * crc mismatch, ENODATA no commit of this migration, EPROTONOSUPPORT
 * another version), and that the userspace reader (vmpf-ctl verify / info)
 * refuses it too and does not crash.  Then page-level damage, which the
 * open cannot see: a page never written, an unknown page state, a page
 * whose crc is wrong, a file cut short after the open: the access gets
 * SIGBUS, never data from elsewhere.
 */
#include <endian.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vmpf_test_util.h"
#include "pagefile.h"

#define TARGET		"/dev/ram1"
#define R0_PAGES	8
#define R1_PAGES	8
#define R1_GPA		(1ULL << 32)
#define PAGES		(R0_PAGES + R1_PAGES)
#define TABLE_OFF	8192
#define STATE_OFF	(TABLE_OFF + 4096)	/* 16 entries: one block */
#define STATE_MAX	4096
#define DATA_OFF	(STATE_OFF + STATE_MAX)
#define FILE_SIZE	(DATA_OFF + PAGES * 4096)
#define STATE		"hostile test device state"
#define GENERATION	0x1234567890abcdefULL
#define FILE_DIR	"/tmp/vmpf-hostile"

struct img {
	unsigned char b[FILE_SIZE];
};

#define SB(im)		((struct vmpf_pf_super *)(im)->b)
#define CM(im)		((struct vmpf_pf_commit *)((im)->b + 4096))
#define TABLE(im)	((struct vmpf_pf_page *)((im)->b + TABLE_OFF))
#define STATEP(im)	((im)->b + STATE_OFF)
#define DATA(im, i)	((im)->b + DATA_OFF + (i) * 4096)

/* Page i: every 4th zero (its slot holds junk that must never show). */
static int page_zero(int i)
{
	return i % 4 == 3;
}

static void fill_page(unsigned char *p, int i)
{
	memset(p, page_zero(i) ? 0 : 0x40 + i, 4096);
}

/* A valid image: two regions, 16 pages, STATE. */
static void make_valid(struct img *im)
{
	struct vmpf_pf_super *sb = SB(im);
	struct vmpf_pf_commit *c = CM(im);
	int i;

	memset(im, 0, sizeof(*im));
	memcpy(sb->magic, VMPF_PF_MAGIC, 8);
	sb->version = htole32(VMPF_PF_VERSION_MIN);
	sb->page_size = htole32(VMPF_PF_PAGE_SIZE);
	memset(sb->uuid, 0x5a, sizeof(sb->uuid));
	sb->generation = htole64(GENERATION);
	sb->total_pages = htole64(PAGES);
	sb->table_off = htole64(TABLE_OFF);
	sb->state_off = htole64(STATE_OFF);
	sb->state_max = htole64(STATE_MAX);
	sb->data_off = htole64(DATA_OFF);
	sb->file_size = htole64(FILE_SIZE);
	sb->nr_regions = htole32(2);
	sb->regions[0] = (struct vmpf_pf_region){ .gpa = 0, .pages = htole64(R0_PAGES),
						  .first_page = 0, .slot = 0 };
	sb->regions[1] = (struct vmpf_pf_region){ .gpa = htole64(R1_GPA),
						  .pages = htole64(R1_PAGES),
						  .first_page = htole64(R0_PAGES),
						  .slot = htole32(3) };
	for (i = 0; i < PAGES; i++) {
		fill_page(DATA(im, i), i);
		TABLE(im)[i].round = htole16(i % 3);
		if (page_zero(i)) {
			TABLE(im)[i].state = VMPF_PAGE_ZERO;
			memset(DATA(im, i), 0xee, 4096);
		} else {
			TABLE(im)[i].state = VMPF_PAGE_DATA;
			TABLE(im)[i].crc = htole32(pf_crc32c(DATA(im, i), 4096));
		}
	}
	memcpy(STATEP(im), STATE, sizeof(STATE));
	memcpy(c->magic, VMPF_PF_COMMIT_MAGIC, 8);
	c->generation = htole64(GENERATION);
	c->state_len = htole64(sizeof(STATE));
	c->rounds = htole64(3);
	c->data_pages = htole64(PAGES - PAGES / 4);
	c->zero_pages = htole64(PAGES / 4);
}

/* Recompute every crc: table and state into the commit, commit, super. */
static void sign(struct img *im)
{
	struct vmpf_pf_commit *c = CM(im);
	struct vmpf_pf_super *sb = SB(im);
	uint64_t len = le64toh(c->state_len);

	c->table_crc = htole32(pf_crc32c(TABLE(im), 4096));
	c->state_crc = htole32(pf_crc32c(STATEP(im), len <= STATE_MAX ? len : STATE_MAX));
	c->crc = 0;
	c->crc = htole32(pf_crc32c(c, sizeof(*c)));
	sb->crc = 0;
	sb->crc = htole32(pf_crc32c(sb, sizeof(*sb)));
}

/* Make the layout fields consistent with total_pages and state_max. */
static void relayout(struct img *im)
{
	struct vmpf_pf_super *sb = SB(im);
	uint64_t pages = le64toh(sb->total_pages);
	uint64_t table_len = (pages * 8 + 4095) & ~4095ULL;	/* wraps as it may */

	sb->table_off = htole64(TABLE_OFF);
	sb->state_off = htole64(TABLE_OFF + table_len);
	sb->data_off = htole64(TABLE_OFF + table_len + le64toh(sb->state_max));
	sb->file_size = htole64(le64toh(sb->data_off) + pages * 4096);
}

/* Write @len bytes of @im to @path with O_DIRECT; 0 or -errno. */
static int write_image(const char *path, const struct img *im, size_t len)
{
	int fd = open(path, O_WRONLY | O_DIRECT | O_CLOEXEC);
	void *buf;
	int ret = 0;

	if (fd < 0)
		return -errno;
	if (posix_memalign(&buf, 4096, sizeof(*im))) {
		close(fd);
		return -ENOMEM;
	}
	memcpy(buf, im, sizeof(*im));
	if (pwrite(fd, buf, (len + 4095) & ~4095UL, 0) != (ssize_t)((len + 4095) & ~4095UL))
		ret = -EIO;
	free(buf);
	close(fd);
	return ret;
}

/* vmpf-ctl next to this program, on $PATH, or in tools/. */
static const char *ctl_path(void)
{
	static char path[4096];
	static const char *const where[] = { "/bin/vmpf-ctl", "tools/vmpf-ctl",
					     "../tools/vmpf-ctl" };
	unsigned int i;

	for (i = 0; i < sizeof(where) / sizeof(where[0]); i++)
		if (!access(where[i], X_OK))
			return realpath(where[i], path) ? path : where[i];
	return NULL;
}

/* Exit status of "vmpf-ctl CMD PATH", 128 + signal if it died of one, -1 none. */
static int run_ctl(const char *cmd, const char *path)
{
	const char *ctl = ctl_path();
	char line[8192];
	int st;

	if (!ctl)
		return -1;
	snprintf(line, sizeof(line), "%s %s %s >/dev/null 2>&1", ctl, cmd, path);
	st = system(line);
	if (st == -1)
		return -1;
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return WEXITSTATUS(st) >= 128 ? WEXITSTATUS(st) : WEXITSTATUS(st);
}

/* --- the cases: what to spoil, and what the kernel must say --- */
enum { SIGN_AFTER, SIGN_BEFORE };	/* spoil then sign, or sign then spoil */
/*
 * What vmpf-ctl verify must do: refuse or accept; R_SKIP: not run (it
 * would read the whole device into memory).
 */
enum { R_REFUSE, R_ACCEPT, R_SKIP };

static void m_none(struct img *im) { }
static void m_magic(struct img *im) { memcpy(SB(im)->magic, "VMPFPAGF", 8); }
static void m_super_crc(struct img *im) { SB(im)->uuid[3] ^= 1; }
static void m_super_crc_field(struct img *im) { SB(im)->crc ^= htole32(0x100); }
static void m_version_3(struct img *im) { SB(im)->version = htole32(3); }
static void m_version_2(struct img *im) { SB(im)->version = htole32(2); }
/* Version 2's region without a memslot: gpa and flags 0, no memslot checks. */
static void m_v2_no_slot(struct img *im)
{
	SB(im)->version = htole32(2);
	SB(im)->regions[1].slot = htole32(VMPF_PF_SLOT_NONE);
	SB(im)->regions[1].gpa = 0;
}
static void m_v1_no_slot(struct img *im) { m_v2_no_slot(im); SB(im)->version = htole32(1); }
static void m_v2_no_slot_gpa(struct img *im)
{
	m_v2_no_slot(im);
	SB(im)->regions[1].gpa = htole64(R1_GPA);
}
static void m_v2_no_slot_flags(struct img *im)
{
	m_v2_no_slot(im);
	SB(im)->regions[1].flags = htole32(1);
}
static void m_version_0(struct img *im) { SB(im)->version = 0; }
static void m_version_huge(struct img *im) { SB(im)->version = htole32(0xffffffff); }
static void m_page_size_8k(struct img *im) { SB(im)->page_size = htole32(8192); }
static void m_page_size_0(struct img *im) { SB(im)->page_size = 0; }
static void m_page_size_512(struct img *im) { SB(im)->page_size = htole32(512); }
static void m_flags(struct img *im) { SB(im)->flags = htole64(1); }

static void m_pages_0(struct img *im)
{
	SB(im)->total_pages = 0;
	relayout(im);
}

static void set_pages(struct img *im, uint64_t total)
{
	SB(im)->total_pages = htole64(total);
	SB(im)->regions[1].pages = htole64(total - R0_PAGES);
	relayout(im);
}

static void m_pages_over_max(struct img *im) { set_pages(im, (1ULL << 27) + 1); }
static void m_pages_2_40(struct img *im) { set_pages(im, 1ULL << 40); }
/* pages * 8 and pages * 4096 wrap: a reader computing naively agrees with itself. */
static void m_pages_wrap(struct img *im) { set_pages(im, (1ULL << 61) + PAGES); }
static void m_pages_all_ones(struct img *im) { set_pages(im, ~0ULL); }
/* Consistent, at the limit, but the file would be 512 GiB: past the device. */
static void m_pages_past_device(struct img *im) { set_pages(im, 1ULL << 27); }
/* 256 MiB of data: just past the 256 MiB RAM disk. */
static void m_pages_just_past_device(struct img *im) { set_pages(im, 1ULL << 16); }

static void m_pages_not_sum(struct img *im)
{
	SB(im)->total_pages = htole64(PAGES + 1);
	relayout(im);
}

static void m_nr_regions_0(struct img *im) { SB(im)->nr_regions = 0; }
static void m_nr_regions_33(struct img *im) { SB(im)->nr_regions = htole32(33); }
static void m_nr_regions_huge(struct img *im) { SB(im)->nr_regions = htole32(0xffffffff); }
static void m_nr_regions_1(struct img *im) { SB(im)->nr_regions = htole32(1); }
static void m_region_gap(struct img *im) { SB(im)->regions[1].first_page = htole64(R0_PAGES + 1); }
static void m_region_first_overlap(struct img *im) { SB(im)->regions[1].first_page = htole64(4); }

static void m_region_pages_0(struct img *im)
{
	SB(im)->regions[1].pages = 0;
	SB(im)->total_pages = htole64(R0_PAGES);
	relayout(im);
}

/* 2^64 - 8 + 24 wraps to 16: a sum that only adds up modulo 2^64. */
static void m_region_pages_wrap(struct img *im)
{
	SB(im)->regions[0].pages = htole64(-8ULL);
	SB(im)->regions[1].first_page = htole64(-8ULL);
	SB(im)->regions[1].pages = htole64(24);
}

static void m_regions_overlap(struct img *im) { SB(im)->regions[1].gpa = htole64(4096); }
static void m_regions_same_gpa(struct img *im) { SB(im)->regions[1].gpa = 0; }
static void m_region_gpa_unaligned(struct img *im) { SB(im)->regions[1].gpa = htole64(R1_GPA + 100); }
static void m_region_gpa_wraps(struct img *im) { SB(im)->regions[1].gpa = htole64(-4096ULL * 4); }
static void m_regions_same_slot(struct img *im) { SB(im)->regions[1].slot = 0; }
static void m_region_slot_huge(struct img *im) { SB(im)->regions[1].slot = htole32(0x10003); }
static void m_table_off_commit(struct img *im) { SB(im)->table_off = htole64(4096); }
static void m_table_off_0(struct img *im) { SB(im)->table_off = 0; }
static void m_table_off_past(struct img *im) { SB(im)->table_off = htole64(1ULL << 40); }
static void m_state_off_table(struct img *im) { SB(im)->state_off = htole64(TABLE_OFF); }

static void m_data_off_state(struct img *im)
{
	SB(im)->data_off = htole64(STATE_OFF);
	SB(im)->file_size = htole64(STATE_OFF + PAGES * 4096);
}

static void m_data_off_past(struct img *im)
{
	SB(im)->data_off = htole64(1ULL << 40);
	SB(im)->file_size = htole64((1ULL << 40) + PAGES * 4096);
}

static void m_state_max_unaligned(struct img *im)
{
	SB(im)->state_max = htole64(100);
	relayout(im);
}

static void m_state_max_2g(struct img *im)
{
	SB(im)->state_max = htole64(2ULL << 30);
	relayout(im);
}

/* state_off + state_max wraps to 4096: data would overlap the commit block. */
static void m_state_max_wraps(struct img *im)
{
	SB(im)->state_max = htole64(-(uint64_t)STATE_OFF + 4096);
	relayout(im);
}

static void m_state_max_0(struct img *im)	/* no room, no state: valid */
{
	SB(im)->state_max = 0;
	CM(im)->state_len = 0;
	relayout(im);
	/* The data moved one block down. */
	memmove(im->b + STATE_OFF, im->b + DATA_OFF, PAGES * 4096);
}

/* A device state bigger than the whole device: 300 MiB in 512 MiB of room. */
static void m_state_past_device(struct img *im)
{
	SB(im)->state_max = htole64(512ULL << 20);
	CM(im)->state_len = htole64(300ULL << 20);
	relayout(im);
}

static void m_file_size_short(struct img *im) { SB(im)->file_size = htole64(FILE_SIZE - 4096); }
static void m_file_size_long(struct img *im) { SB(im)->file_size = htole64(FILE_SIZE + 4096); }
static void m_commit_zero(struct img *im) { memset(CM(im), 0, 4096); }
static void m_commit_magic(struct img *im) { CM(im)->magic[7] = 'X'; }
static void m_commit_crc(struct img *im) { CM(im)->rounds ^= htole64(1); }
static void m_commit_generation(struct img *im) { CM(im)->generation = htole64(GENERATION + 1); }
static void m_state_len_over_max(struct img *im) { CM(im)->state_len = htole64(STATE_MAX + 1); }
static void m_state_len_huge(struct img *im) { CM(im)->state_len = htole64(~0ULL); }
static void m_state_len_max(struct img *im) { CM(im)->state_len = htole64(STATE_MAX); }
static void m_table_entry(struct img *im) { TABLE(im)[5].crc ^= htole32(1); }
static void m_table_padding(struct img *im) { TABLE(im)[PAGES + 3].state = 2; }
static void m_table_crc_field(struct img *im) { CM(im)->table_crc ^= htole32(1); }
static void m_state_byte(struct img *im) { STATEP(im)[2] ^= 1; }
static void m_state_crc_field(struct img *im) { CM(im)->state_crc ^= htole32(1); }

static void m_garbage(struct img *im)
{
	uint64_t x = 0x243f6a8885a308d3ULL;
	size_t i;

	for (i = 0; i < sizeof(*im); i += 8) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		memcpy(im->b + i, &x, 8);
	}
}

static void m_all_zero(struct img *im) { memset(im, 0, sizeof(*im)); }

FIXTURE(hostile) {
	int dev, target;
	struct img *im;
};

FIXTURE_VARIANT(hostile) {
	void (*spoil)(struct img *im);
	int when;	/* SIGN_AFTER or SIGN_BEFORE */
	int err;	/* what RESTORE_OPEN must fail with, 0 for success */
	int reader;	/* R_REFUSE, R_ACCEPT or R_SKIP */
};

#define CASE(name, fn, w, e, r) \
	FIXTURE_VARIANT_ADD(hostile, name) { .spoil = fn, .when = w, .err = e, .reader = r }

CASE(valid, m_none, SIGN_AFTER, 0, R_ACCEPT);
CASE(state_len_equals_max, m_state_len_max, SIGN_AFTER, 0, R_ACCEPT);
CASE(state_max_0, m_state_max_0, SIGN_AFTER, 0, R_ACCEPT);
CASE(table_padding_ignored, m_table_padding, SIGN_AFTER, 0, R_ACCEPT);
CASE(bad_magic, m_magic, SIGN_AFTER, EINVAL, R_REFUSE);
CASE(super_crc, m_super_crc, SIGN_BEFORE, EBADMSG, R_REFUSE);
CASE(super_crc_field, m_super_crc_field, SIGN_BEFORE, EBADMSG, R_REFUSE);
CASE(version_3, m_version_3, SIGN_AFTER, EPROTONOSUPPORT, R_REFUSE);
CASE(version_2, m_version_2, SIGN_AFTER, 0, R_ACCEPT);
CASE(v2_region_without_memslot, m_v2_no_slot, SIGN_AFTER, 0, R_ACCEPT);
CASE(v1_region_without_memslot, m_v1_no_slot, SIGN_AFTER, EINVAL, R_REFUSE);
CASE(v2_no_memslot_with_gpa, m_v2_no_slot_gpa, SIGN_AFTER, EINVAL, R_REFUSE);
CASE(v2_no_memslot_with_flags, m_v2_no_slot_flags, SIGN_AFTER, EINVAL, R_REFUSE);
CASE(version_0, m_version_0, SIGN_AFTER, EPROTONOSUPPORT, R_REFUSE);
CASE(version_huge, m_version_huge, SIGN_AFTER, EPROTONOSUPPORT, R_REFUSE);
CASE(page_size_8k, m_page_size_8k, SIGN_AFTER, EINVAL, R_REFUSE);
CASE(page_size_0, m_page_size_0, SIGN_AFTER, EINVAL, R_REFUSE);
CASE(page_size_512, m_page_size_512, SIGN_AFTER, EINVAL, R_REFUSE);
CASE(flags_set, m_flags, SIGN_AFTER, EINVAL, R_REFUSE);
CASE(pages_0, m_pages_0, SIGN_AFTER, EINVAL, R_REFUSE);
CASE(pages_over_max, m_pages_over_max, SIGN_AFTER, EINVAL, R_REFUSE);
CASE(pages_2_40, m_pages_2_40, SIGN_AFTER, EINVAL, R_REFUSE);
CASE(pages_mul_wraps, m_pages_wrap, SIGN_AFTER, EINVAL, R_REFUSE);
CASE(pages_all_ones, m_pages_all_ones, SIGN_AFTER, EINVAL, R_REFUSE);
CASE(pages_past_device, m_pages_past_device, SIGN_AFTER, EINVAL, R_SKIP);
CASE(pages_just_past_device, m_pages_just_past_device, SIGN_AFTER, EINVAL, R_REFUSE);
CASE(pages_not_region_sum, m_pages_not_sum, SIGN_AFTER, EINVAL, R_REFUSE);
CASE(nr_regions_0, m_nr_regions_0, SIGN_AFTER, EINVAL, R_REFUSE);
CASE(nr_regions_33, m_nr_regions_33, SIGN_AFTER, EINVAL, R_REFUSE);
CASE(nr_regions_huge, m_nr_regions_huge, SIGN_AFTER, EINVAL, R_REFUSE);
CASE(nr_regions_short, m_nr_regions_1, SIGN_AFTER, EINVAL, R_REFUSE);
CASE(region_gap, m_region_gap, SIGN_AFTER, EINVAL, R_REFUSE);
CASE(region_first_page_overlap, m_region_first_overlap, SIGN_AFTER, EINVAL, R_REFUSE);
CASE(region_pages_0, m_region_pages_0, SIGN_AFTER, EINVAL, R_REFUSE);
CASE(region_pages_sum_wraps, m_region_pages_wrap, SIGN_AFTER, EINVAL, R_REFUSE);
CASE(regions_overlap, m_regions_overlap, SIGN_AFTER, EINVAL, R_REFUSE);
CASE(regions_same_gpa, m_regions_same_gpa, SIGN_AFTER, EINVAL, R_REFUSE);
CASE(region_gpa_unaligned, m_region_gpa_unaligned, SIGN_AFTER, EINVAL, R_REFUSE);
CASE(region_gpa_wraps, m_region_gpa_wraps, SIGN_AFTER, EINVAL, R_REFUSE);
CASE(regions_same_slot, m_regions_same_slot, SIGN_AFTER, EINVAL, R_REFUSE);
CASE(region_slot_not_as0, m_region_slot_huge, SIGN_AFTER, EINVAL, R_REFUSE);
CASE(table_overlaps_commit, m_table_off_commit, SIGN_AFTER, EINVAL, R_REFUSE);
CASE(table_off_0, m_table_off_0, SIGN_AFTER, EINVAL, R_REFUSE);
CASE(table_past_device, m_table_off_past, SIGN_AFTER, EINVAL, R_REFUSE);
CASE(state_overlaps_table, m_state_off_table, SIGN_AFTER, EINVAL, R_REFUSE);
CASE(data_overlaps_state, m_data_off_state, SIGN_AFTER, EINVAL, R_REFUSE);
CASE(data_past_device, m_data_off_past, SIGN_AFTER, EINVAL, R_REFUSE);
CASE(state_max_unaligned, m_state_max_unaligned, SIGN_AFTER, EINVAL, R_REFUSE);
CASE(state_max_2g, m_state_max_2g, SIGN_AFTER, EINVAL, R_REFUSE);
CASE(state_max_wraps, m_state_max_wraps, SIGN_AFTER, EINVAL, R_REFUSE);
CASE(state_past_device, m_state_past_device, SIGN_AFTER, EINVAL, R_SKIP);
CASE(file_size_short, m_file_size_short, SIGN_AFTER, EINVAL, R_REFUSE);
CASE(file_size_long, m_file_size_long, SIGN_AFTER, EINVAL, R_REFUSE);
CASE(commit_zero, m_commit_zero, SIGN_BEFORE, ENODATA, R_REFUSE);
CASE(commit_magic, m_commit_magic, SIGN_AFTER, ENODATA, R_REFUSE);
CASE(commit_crc, m_commit_crc, SIGN_BEFORE, EBADMSG, R_REFUSE);
CASE(commit_other_generation, m_commit_generation, SIGN_AFTER, ENODATA, R_REFUSE);
CASE(state_len_over_max, m_state_len_over_max, SIGN_AFTER, EINVAL, R_REFUSE);
CASE(state_len_huge, m_state_len_huge, SIGN_AFTER, EINVAL, R_REFUSE);
CASE(table_entry_crc, m_table_entry, SIGN_BEFORE, EBADMSG, R_REFUSE);
CASE(table_crc_field, m_table_crc_field, SIGN_BEFORE, EBADMSG, R_REFUSE);
CASE(state_crc, m_state_byte, SIGN_BEFORE, EBADMSG, R_REFUSE);
CASE(state_crc_field, m_state_crc_field, SIGN_BEFORE, EBADMSG, R_REFUSE);
CASE(garbage, m_garbage, SIGN_BEFORE, EINVAL, R_REFUSE);
CASE(all_zero, m_all_zero, SIGN_BEFORE, EINVAL, R_REFUSE);

FIXTURE_SETUP(hostile)
{
	struct vmpf_api api;

	self->dev = self->target = -1;
	self->im = NULL;
	vmpf_open_or_skip(&self->dev);
	if (access(TARGET, F_OK))
		SKIP(return, "%s missing (the test guest has it)", TARGET);
	ASSERT_EQ(0, vmpf_handshake(self->dev, VMPF_FEATURE_RESTORE, &api));
	self->im = malloc(sizeof(*self->im));
	ASSERT_NE(NULL, self->im);
	make_valid(self->im);
	if (variant->when == SIGN_BEFORE)
		sign(self->im);
	variant->spoil(self->im);
	if (variant->when == SIGN_AFTER)
		sign(self->im);
	ASSERT_EQ(0, write_image(TARGET, self->im, FILE_SIZE));
	self->target = open(TARGET, O_RDONLY | O_DIRECT | O_CLOEXEC);
	ASSERT_LE(0, self->target);
}

FIXTURE_TEARDOWN(hostile)
{
	if (self->dev >= 0)
		close(self->dev);
	if (self->target >= 0)
		close(self->target);
	free(self->im);
}

static int restore_open(int dev, int target, struct vmpf_restore_open *ro)
{
	*ro = (struct vmpf_restore_open){ .target_fd = target, .flags = VMPF_RESTORE_NO_PREFETCH | VMPF_RESTORE_NO_LEASE };
	return vmpf_ioctl_checked(dev, VMPF_IOC_RESTORE_OPEN, ro);
}

TEST_F(hostile, restore_open)
{
	struct vmpf_restore_open ro;
	struct vmpf_dev_info info;
	int ret;

	ret = restore_open(self->dev, self->target, &ro);
	EXPECT_EQ(-variant->err, ret) TH_LOG("RESTORE_OPEN: %s, want %s",
					     ret ? strerror(-ret) : "success",
					     variant->err ? strerror(variant->err) : "success");
	if (ret)
		return;
	EXPECT_EQ(le64toh(SB(self->im)->total_pages), ro.total_pages);
	EXPECT_EQ(le64toh(CM(self->im)->state_len), ro.state_len);
	EXPECT_EQ(GENERATION, ro.generation);
	/* Refused opens leave nothing behind: the one session is ours. */
	ASSERT_EQ(0, vmpf_ioctl_checked(self->dev, VMPF_IOC_DEV_INFO, &info));
	EXPECT_EQ(1, info.sessions);
}

TEST_F(hostile, userspace_reader)
{
	int verify, info;

	if (variant->reader == R_SKIP)
		SKIP(return, "the reader would read the whole device");
	verify = run_ctl("verify", TARGET);
	if (verify < 0)
		SKIP(return, "vmpf-ctl not found");
	info = run_ctl("info", TARGET);
	EXPECT_GT(128, verify) TH_LOG("vmpf-ctl verify died of signal %d", verify - 128);
	EXPECT_GT(128, info) TH_LOG("vmpf-ctl info died of signal %d", info - 128);
	if (variant->reader == R_ACCEPT) {
		EXPECT_EQ(0, verify);
	} else {
		EXPECT_NE(0, verify);
	}
}

/* --- page-level damage: the open succeeds, the access gets SIGBUS --- */
static sigjmp_buf bus_jmp;

static void on_bus(int sig)
{
	siglongjmp(bus_jmp, 1);
}

/* SIGBUS reading 4096 bytes at @p into @buf: 1, else 0. */
static int read_sigbus(const volatile unsigned char *p, unsigned char *buf)
{
	struct sigaction sa = { .sa_handler = on_bus }, old;
	int bus = 0;

	sigaction(SIGBUS, &sa, &old);
	if (sigsetjmp(bus_jmp, 1))
		bus = 1;
	else
		memcpy(buf, (const void *)p, 4096);
	sigaction(SIGBUS, &old, NULL);
	return bus;
}

struct damaged {
	struct img im;
	int dev, target;
	unsigned char *map;
	char path[128];
};

/* Open @im (written to @path: TARGET, or a file) and map all of it. */
static int open_map(struct damaged *d, const char *path, size_t len, int sign_it)
{
	struct vmpf_restore_open ro;
	struct vmpf_api api;
	int ret;

	if (sign_it)
		sign(&d->im);
	if (strcmp(path, TARGET)) {
		int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

		if (fd < 0)
			return -errno;
		close(fd);
	}
	ret = write_image(path, &d->im, len);
	if (ret)
		return ret;
	d->dev = vmpf_open(vmpf_device_path());
	if (d->dev < 0)
		return d->dev;
	ret = vmpf_handshake(d->dev, VMPF_FEATURE_RESTORE, &api);
	if (ret)
		return ret;
	d->target = open(path, O_RDONLY | O_DIRECT | O_CLOEXEC);
	if (d->target < 0)
		return -errno;
	ret = restore_open(d->dev, d->target, &ro);
	if (ret)
		return ret;
	d->map = mmap(NULL, PAGES * 4096, PROT_READ, MAP_SHARED, d->dev, 0);
	return d->map == MAP_FAILED ? -errno : 0;
}

static void close_map(struct damaged *d)
{
	if (d->map && d->map != MAP_FAILED)
		munmap(d->map, PAGES * 4096);
	if (d->dev >= 0)
		close(d->dev);
	if (d->target >= 0)
		close(d->target);
	d->map = NULL;
	d->dev = d->target = -1;
}

static void rstatus(int dev, struct vmpf_restore_status *st)
{
	memset(st, 0, sizeof(*st));
	__vmpf_ioctl(dev, VMPF_IOC_RESTORE_STATUS, st);
}

/* Each bad page gets SIGBUS, and never shows; the good ones read right. */
TEST(page_damage_sigbus)
{
	static const struct { int page; int state; int crc_off; } bad[] = {
		{ 1, VMPF_PAGE_NONE, 0 },	/* never written: not part of an image */
		{ 6, 7, 0 },			/* a state that does not exist */
		{ 9, 0xff, 0 },
		{ 12, VMPF_PAGE_DATA, 1 },	/* data whose crc is wrong */
	};
	struct damaged *d = calloc(1, sizeof(*d));
	struct vmpf_restore_status st;
	unsigned char buf[4096], want[4096];
	unsigned int i;
	int ret, p;

	ASSERT_NE(NULL, d);
	d->dev = d->target = -1;
	if (access(TARGET, F_OK))
		SKIP(return, "%s missing", TARGET);
	make_valid(&d->im);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		TABLE(&d->im)[bad[i].page].state = bad[i].state;
		TABLE(&d->im)[bad[i].page].crc ^= htole32(bad[i].crc_off);
	}
	ret = open_map(d, TARGET, FILE_SIZE, 1);
	if (ret == -ENOENT)
		SKIP(return, "module not loaded");
	ASSERT_EQ(0, ret) TH_LOG("opening the damaged image: %s", strerror(-ret));
	for (p = 0; p < PAGES; p++) {
		int is_bad = 0;

		for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
			is_bad |= bad[i].page == p;
		memset(buf, 0x77, sizeof(buf));
		EXPECT_EQ(is_bad, read_sigbus(d->map + p * 4096, buf)) TH_LOG("page %d", p);
		fill_page(want, p);
		if (!is_bad)
			EXPECT_EQ(0, memcmp(buf, want, 4096)) TH_LOG("page %d reads wrong", p);
	}
	/* Still refused on a second try. */
	EXPECT_EQ(1, read_sigbus(d->map + 12 * 4096 + 100, buf));
	rstatus(d->dev, &st);
	EXPECT_EQ(4, st.bad_pages);
	EXPECT_EQ(1, st.crc_errors);
	EXPECT_EQ(1, st.first_bad);
	EXPECT_EQ(PAGES - 4, st.resident);
	EXPECT_EQ(VMPF_RESTORE_RUNNING, st.phase);
	close_map(d);
	free(d);
}

/*
 * A directory whose files do O_DIRECT: tmpfs since Linux 6.6, else ext4
 * made on /dev/ram0 and mounted for the test.  NULL if neither works.
 */
static const char *direct_dir(int *mounted)
{
	int fd;

	*mounted = 0;
	mkdir(FILE_DIR, 0700);
	fd = open(FILE_DIR "/probe", O_RDWR | O_CREAT | O_DIRECT | O_CLOEXEC, 0600);
	if (fd >= 0) {
		close(fd);
		unlink(FILE_DIR "/probe");
		return FILE_DIR;
	}
	if (system("mke2fs -q /dev/ram0 >/dev/null 2>&1") ||
	    mount("/dev/ram0", FILE_DIR, "ext4", 0, NULL))
		return NULL;
	*mounted = 1;
	return FILE_DIR;
}

static void direct_dir_done(int mounted)
{
	if (mounted)
		umount(FILE_DIR);
	rmdir(FILE_DIR);
}

/* A page file that is a regular file, shorter than its superblock says. */
TEST(truncated_file)
{
	static const size_t lens[] = { 0, 4096, 8192, DATA_OFF, FILE_SIZE - 4096 };
	struct damaged *d = calloc(1, sizeof(*d));
	const char *dir;
	unsigned int i;
	int mounted, ret;

	ASSERT_NE(NULL, d);
	d->dev = d->target = -1;
	if (access("/dev/ram0", F_OK))
		SKIP(return, "/dev/ram0 missing");
	dir = direct_dir(&mounted);
	if (!dir)
		SKIP(return, "no filesystem here does O_DIRECT");
	snprintf(d->path, sizeof(d->path), "%s/pagefile", dir);
	make_valid(&d->im);
	for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		ret = open_map(d, d->path, lens[i], 1);
		if (ret == -ENOENT) {
			direct_dir_done(mounted);
			SKIP(return, "module not loaded");
		}
		EXPECT_EQ(-EINVAL, ret) TH_LOG("a file of %zu bytes: %s", lens[i],
					       ret ? strerror(-ret) : "accepted");
		close_map(d);
	}
	/* The whole file: fine. */
	EXPECT_EQ(0, open_map(d, d->path, FILE_SIZE, 1));
	close_map(d);
	unlink(d->path);
	direct_dir_done(mounted);
	free(d);
}

/*
 * The file shrinks after the open: the data slots past the new end are
 * gone.  Faults on them get SIGBUS, not zeros or stale data; zero pages
 * need no I/O and still work.
 */
TEST(file_cut_after_open)
{
	struct damaged *d = calloc(1, sizeof(*d));
	struct vmpf_restore_status st;
	unsigned char buf[4096], want[4096];
	const char *dir;
	int mounted, ret, p, cut = 10;

	ASSERT_NE(NULL, d);
	d->dev = d->target = -1;
	if (access("/dev/ram0", F_OK))
		SKIP(return, "/dev/ram0 missing");
	dir = direct_dir(&mounted);
	if (!dir)
		SKIP(return, "no filesystem here does O_DIRECT");
	snprintf(d->path, sizeof(d->path), "%s/pagefile", dir);
	make_valid(&d->im);
	ret = open_map(d, d->path, FILE_SIZE, 1);
	if (ret == -ENOENT) {
		direct_dir_done(mounted);
		SKIP(return, "module not loaded");
	}
	ASSERT_EQ(0, ret) TH_LOG("%s", strerror(-ret));
	ASSERT_EQ(0, truncate(d->path, DATA_OFF + cut * 4096));
	for (p = 0; p < PAGES; p++) {
		int gone = p >= cut && !page_zero(p);

		memset(buf, 0x77, sizeof(buf));
		EXPECT_EQ(gone, read_sigbus(d->map + p * 4096, buf)) TH_LOG("page %d", p);
		fill_page(want, p);
		if (!gone)
			EXPECT_EQ(0, memcmp(buf, want, 4096)) TH_LOG("page %d reads wrong", p);
	}
	rstatus(d->dev, &st);
	EXPECT_EQ(4, st.bad_pages);	/* 10, 12, 13, 14: data pages past the cut */
	EXPECT_EQ(4, st.io_errors);
	EXPECT_EQ(0, st.crc_errors);
	close_map(d);
	unlink(d->path);
	direct_dir_done(mounted);
	free(d);
}

/* The valid image made here reads back right through the kernel. */
TEST(valid_image_reads_back)
{
	struct damaged *d = calloc(1, sizeof(*d));
	struct vmpf_restore_region regs[2];
	struct vmpf_restore_info ri = { .regions = (unsigned long)regs, .regions_cap = 2 };
	unsigned char buf[4096], want[4096], state[64];
	int ret, p;

	ASSERT_NE(NULL, d);
	d->dev = d->target = -1;
	if (access(TARGET, F_OK))
		SKIP(return, "%s missing", TARGET);
	make_valid(&d->im);
	ret = open_map(d, TARGET, FILE_SIZE, 1);
	if (ret == -ENOENT)
		SKIP(return, "module not loaded");
	ASSERT_EQ(0, ret) TH_LOG("%s", strerror(-ret));
	ri.state = (unsigned long)state;
	ri.state_cap = sizeof(state);
	ASSERT_EQ(0, vmpf_ioctl_checked(d->dev, VMPF_IOC_RESTORE_INFO, &ri));
	EXPECT_EQ(2, ri.nr_regions);
	EXPECT_EQ(sizeof(STATE), ri.state_len);
	EXPECT_STREQ(STATE, (char *)state);
	EXPECT_EQ(R1_GPA, regs[1].gpa);
	EXPECT_EQ(3, regs[1].slot);
	EXPECT_EQ(R0_PAGES * 4096, regs[1].offset);
	for (p = 0; p < PAGES; p++) {
		EXPECT_EQ(0, read_sigbus(d->map + p * 4096, buf)) TH_LOG("page %d", p);
		fill_page(want, p);
		EXPECT_EQ(0, memcmp(buf, want, 4096)) TH_LOG("page %d reads wrong", p);
	}
	close_map(d);
	free(d);
}

TEST_HARNESS_MAIN
