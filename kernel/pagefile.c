// SPDX-License-Identifier: GPL-2.0
/*
 * The page-file format, versions 1 and 2 (uapi/linux/vmpagefile.h and
 * docs/pagefile-format.md): layout, superblock and commit record.
 *
 * Commit ordering, which makes the file crash-consistent: the superblock
 * with a new generation and an all-zero commit block are written and
 * flushed before any page; data pages, the page table and the device
 * state follow; a flush; then the commit record carrying the generation
 * and the table's and state's crc32c; a flush.  A crash anywhere leaves
 * either that committed image or a file whose commit record is missing,
 * torn or of another generation, which every reader refuses.
 */
#include <linux/crc32.h>
#include <linux/crc32c.h>
#include <linux/gfp.h>
#include <linux/kernel.h>
#include <linux/math64.h>
#include <linux/random.h>
#include <linux/sizes.h>
#include <linux/string.h>
#include <linux/ktime.h>
#include <linux/timekeeping.h>

#include "source.h"

/*
 * Two crc32c implementations give the same result: libcrc32c, through the
 * crypto API's fastest driver when it loaded (crc32c-intel: the SSE4.2
 * instruction, and PCLMULQDQ with the FPU for long buffers), and
 * lib/crc32.c's table-driven __crc32c_le().  Which one is faster depends on
 * the machine, not only on the CPU flags: under an emulator (QEMU's TCG)
 * saving the FPU state costs more than the tables.  So, as the kernel's xor
 * and raid6 code pick their routines, vmpf_crc_select() times both on a
 * page at load and keeps the faster one.
 */
static bool vmpf_crc_table __read_mostly;

u32 vmpf_raw_crc32c(u32 seed, const void *p, size_t len)
{
	return vmpf_crc_table ? __crc32c_le(seed, p, len) : crc32c(seed, p, len);
}

/* Nanoseconds for the best of five runs of 16 page crcs. */
static u64 vmpf_crc_time(const void *buf, bool table)
{
	u64 best = U64_MAX, t;
	u32 crc = 0;
	int run, i;

	for (run = 0; run < 5; run++) {
		t = ktime_get_ns();
		for (i = 0; i < 16; i++)
			crc = table ? __crc32c_le(crc, buf, PAGE_SIZE) :
				      crc32c(crc, buf, PAGE_SIZE);
		t = ktime_get_ns() - t;
		best = min(best, t);
	}
	/* Keep the loops from being optimised away. */
	OPTIMIZER_HIDE_VAR(crc);
	return best ?: 1;
}

void vmpf_crc_select(void)
{
	void *buf = (void *)__get_free_page(GFP_KERNEL);
	u64 lib, table;

	if (!buf)
		return;		/* libcrc32c, as when the tables lose */
	get_random_bytes(buf, PAGE_SIZE);
	lib = vmpf_crc_time(buf, false);
	table = vmpf_crc_time(buf, true);
	free_page((unsigned long)buf);
	vmpf_crc_table = table < lib;
	pr_info("crc32c: crypto API %llu MB/s, tables %llu MB/s: using the %s\n",
		div64_u64(16 * PAGE_SIZE * 1000ULL, lib),
		div64_u64(16 * PAGE_SIZE * 1000ULL, table),
		vmpf_crc_table ? "tables" : "crypto API");
}

u32 vmpf_crc32c(const void *p, size_t len)
{
	return vmpf_raw_crc32c(~0U, p, len) ^ ~0U;
}

void vmpf_pf_layout(struct vmpf_layout *l, u64 total_pages, u64 state_max)
{
	l->total_pages = total_pages;
	l->table_off = 2 * VMPF_PF_BLOCK;
	l->table_len = round_up(total_pages * sizeof(struct vmpf_pf_page),
				VMPF_PF_BLOCK);
	l->state_off = l->table_off + l->table_len;
	l->state_max = round_up(state_max, VMPF_PF_BLOCK);
	l->data_off = l->state_off + l->state_max;
	l->file_size = l->data_off + total_pages * VMPF_PF_PAGE_SIZE;
}

void vmpf_pf_fill_super(struct vmpf_source *src, struct vmpf_pf_super *sb)
{
	const struct vmpf_layout *l = &src->layout;
	unsigned int i;

	memset(sb, 0, sizeof(*sb));
	memcpy(sb->magic, VMPF_PF_MAGIC, sizeof(sb->magic));
	/* Version 1 when every region is a memslot: older readers read it. */
	sb->version = cpu_to_le32(VMPF_PF_VERSION_MIN);
	for (i = 0; i < src->nr_regions; i++)
		if (src->regions[i].untracked)
			sb->version = cpu_to_le32(VMPF_PF_VERSION);
	sb->page_size = cpu_to_le32(VMPF_PF_PAGE_SIZE);
	get_random_bytes(sb->uuid, sizeof(sb->uuid));
	sb->generation = cpu_to_le64(src->generation);
	sb->total_pages = cpu_to_le64(l->total_pages);
	sb->table_off = cpu_to_le64(l->table_off);
	sb->state_off = cpu_to_le64(l->state_off);
	sb->state_max = cpu_to_le64(l->state_max);
	sb->data_off = cpu_to_le64(l->data_off);
	sb->file_size = cpu_to_le64(l->file_size);
	sb->nr_regions = cpu_to_le32(src->nr_regions);
	for (i = 0; i < src->nr_regions; i++) {
		const struct vmpf_sregion *r = &src->regions[i];

		sb->regions[i].gpa = cpu_to_le64(r->gpa);
		sb->regions[i].pages = cpu_to_le64(r->npages);
		sb->regions[i].first_page = cpu_to_le64(r->first_page);
		sb->regions[i].slot = cpu_to_le32(r->slot);
		sb->regions[i].flags = cpu_to_le32(r->orig_flags);
	}
	sb->crc = cpu_to_le32(vmpf_crc32c(sb, sizeof(*sb)));
}

void vmpf_pf_fill_commit(struct vmpf_source *src, struct vmpf_pf_commit *c,
			 u32 table_crc, u32 state_crc, u64 data_pages,
			 u64 zero_pages)
{
	memset(c, 0, sizeof(*c));
	memcpy(c->magic, VMPF_PF_COMMIT_MAGIC, sizeof(c->magic));
	c->generation = cpu_to_le64(src->generation);
	c->state_len = cpu_to_le64(src->state_len);
	c->state_crc = cpu_to_le32(state_crc);
	c->table_crc = cpu_to_le32(table_crc);
	c->rounds = cpu_to_le64(src->nr_rounds);
	c->data_pages = cpu_to_le64(data_pages);
	c->zero_pages = cpu_to_le64(zero_pages);
	c->commit_time_ns = cpu_to_le64(ktime_get_real_ns());

	/* History for the next migration of this VM; @lock for the status. */
	c->flags = cpu_to_le64(VMPF_PF_COMMIT_HISTORY);
	c->final_pages = cpu_to_le64(src->final_pages);
	c->dirty_rate = cpu_to_le64(src->dirty_rate);
	c->write_rate = cpu_to_le64(src->write_bps);
	spin_lock(&src->lock);
	c->precopy_ns = cpu_to_le64(src->finish_ns - src->start_ns);
	c->throttle_pct = cpu_to_le32(src->throttle_ready ? src->throttle_ready - 1 :
				      src->throttle_pct);
	c->throttle_peak = cpu_to_le32(src->throttle_peak);
	spin_unlock(&src->lock);
	c->crc = cpu_to_le32(vmpf_crc32c(c, sizeof(*c)));
}

/*
 * The regions become the restored VM's memslots: each page aligned and not
 * wrapping around, with a slot id the source could have had, and no two
 * sharing a slot or guest-physical pages.  Version 2 adds regions no
 * memslot mapped (VMPF_PF_SLOT_NONE, guest-physical address 0), which a
 * VMM maps but gives no memslot.  Region sizes are checked first.
 */
static int vmpf_pf_check_regions(const struct vmpf_pf_super *sb, u32 n)
{
	bool v2 = le32_to_cpu(sb->version) >= 2;
	u64 gpa, end, b_gpa, b_end;
	u32 i, j;

	for (i = 0; i < n; i++) {
		const struct vmpf_pf_region *a = &sb->regions[i];
		bool none = le32_to_cpu(a->slot) == VMPF_PF_SLOT_NONE;

		gpa = le64_to_cpu(a->gpa);
		end = gpa + le64_to_cpu(a->pages) * VMPF_PF_PAGE_SIZE;
		if (!IS_ALIGNED(gpa, VMPF_PF_PAGE_SIZE) || end <= gpa ||
		    (le32_to_cpu(a->slot) > SHRT_MAX && !none) ||
		    (none && (!v2 || gpa || a->flags)))
			return -EINVAL;
		if (none)
			continue;
		for (j = 0; j < i; j++) {
			const struct vmpf_pf_region *b = &sb->regions[j];

			if (le32_to_cpu(b->slot) == VMPF_PF_SLOT_NONE)
				continue;
			b_gpa = le64_to_cpu(b->gpa);
			b_end = b_gpa + le64_to_cpu(b->pages) * VMPF_PF_PAGE_SIZE;
			if (a->slot == b->slot || (gpa < b_end && b_gpa < end))
				return -EINVAL;
		}
	}
	return 0;
}

/*
 * Check a superblock read from a page file of @size bytes.  Everything a
 * reader will use is checked here, so a hostile file cannot send it out
 * of bounds: regions consecutive, within total_pages and usable as
 * memslots, offsets exactly as vmpf_pf_layout() puts them, the file big
 * enough.
 */
int vmpf_pf_check_super(const struct vmpf_pf_super *sb, loff_t size)
{
	struct vmpf_pf_super copy = *sb;
	struct vmpf_layout l;
	u64 pages, total = 0;
	u32 i, n;

	if (memcmp(sb->magic, VMPF_PF_MAGIC, sizeof(sb->magic)))
		return -EINVAL;
	copy.crc = 0;
	if (vmpf_crc32c(&copy, sizeof(copy)) != le32_to_cpu(sb->crc))
		return -EBADMSG;
	if (le32_to_cpu(sb->version) < VMPF_PF_VERSION_MIN ||
	    le32_to_cpu(sb->version) > VMPF_PF_VERSION)
		return -EPROTONOSUPPORT;
	n = le32_to_cpu(sb->nr_regions);
	pages = le64_to_cpu(sb->total_pages);
	if (le32_to_cpu(sb->page_size) != VMPF_PF_PAGE_SIZE || !n ||
	    n > VMPF_MAX_REGIONS || !pages || pages > VMPF_MAX_PAGES || sb->flags ||
	    le64_to_cpu(sb->state_max) > SZ_1G ||
	    !IS_ALIGNED(le64_to_cpu(sb->state_max), VMPF_PF_BLOCK))
		return -EINVAL;
	for (i = 0; i < n; i++) {
		if (le64_to_cpu(sb->regions[i].first_page) != total ||
		    le64_to_cpu(sb->regions[i].pages) > pages - total ||
		    !le64_to_cpu(sb->regions[i].pages))
			return -EINVAL;
		total += le64_to_cpu(sb->regions[i].pages);
	}
	if (total != pages || vmpf_pf_check_regions(sb, n))
		return -EINVAL;
	vmpf_pf_layout(&l, pages, le64_to_cpu(sb->state_max));
	if (le64_to_cpu(sb->table_off) != l.table_off ||
	    le64_to_cpu(sb->state_off) != l.state_off ||
	    le64_to_cpu(sb->data_off) != l.data_off ||
	    le64_to_cpu(sb->file_size) != l.file_size || l.file_size > size)
		return -EINVAL;
	return 0;
}

/* The commit record must be whole and of the superblock's migration. */
int vmpf_pf_check_commit(const struct vmpf_pf_commit *c,
			 const struct vmpf_pf_super *sb)
{
	struct vmpf_pf_commit copy = *c;

	if (memcmp(c->magic, VMPF_PF_COMMIT_MAGIC, sizeof(c->magic)))
		return -ENODATA;
	copy.crc = 0;
	if (vmpf_crc32c(&copy, sizeof(copy)) != le32_to_cpu(c->crc))
		return -EBADMSG;
	if (c->generation != sb->generation)
		return -ENODATA;
	if (le64_to_cpu(c->state_len) > le64_to_cpu(sb->state_max))
		return -EINVAL;
	return 0;
}
