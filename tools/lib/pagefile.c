// SPDX-License-Identifier: GPL-2.0
/*
 * Page-file reading and checking, see pagefile.h.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "pagefile.h"

static uint32_t crc_table[256];

uint32_t pf_crc32c(const void *p, size_t len)
{
	const uint8_t *b = p;
	uint32_t crc = ~0U;
	int i, j;

	if (!crc_table[1]) {
		for (i = 0; i < 256; i++) {
			uint32_t c = i;

			for (j = 0; j < 8; j++)
				c = c & 1 ? (c >> 1) ^ 0x82f63b78 : c >> 1;
			crc_table[i] = c;
		}
	}
	while (len--)
		crc = crc_table[(crc ^ *b++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

static int why(struct pf *pf, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(pf->why, sizeof(pf->why), fmt, ap);
	va_end(ap);
	return -err;
}

static int pread_all(int fd, void *buf, size_t len, off_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, (char *)buf + done, len - done, off + done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (!n)
			return -ENODATA;
		done += n;
	}
	return 0;
}

/* The image's ownership lease, when one was ever taken (pf->lease_valid). */
static void pf_read_lease(struct pf *pf)
{
	struct vmpf_pf_lease l;
	uint32_t crc;

	if (pread_all(pf->fd, &l, sizeof(l), VMPF_PF_LEASE_OFF))
		return;
	crc = le32toh(l.crc);
	l.crc = 0;
	if (memcmp(l.magic, VMPF_PF_LEASE_MAGIC, 8) || l.generation != pf->sb.generation ||
	    pf_crc32c(&l, sizeof(l)) != crc)
		return;
	l.crc = htole32(crc);
	l.host[sizeof(l.host) - 1] = 0;
	pf->lease = l;
	pf->lease_valid = 1;
}

const char *pf_lease_state_name(uint32_t state)
{
	static const char *const names[] = { "free", "reading", "restored", "revoked" };

	return state < 4 ? names[state] : "unknown";
}

int pf_open(struct pf *pf, const char *path)
{
	struct vmpf_pf_super sb;
	struct vmpf_pf_commit c;
	uint32_t crc, n, i;
	uint64_t pages, total = 0, want;
	off_t size;
	int ret;

	memset(pf, 0, sizeof(*pf));
	pf->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (pf->fd < 0)
		return why(pf, errno, "cannot open %s: %s", path, strerror(errno));
	/*
	 * The file is read through the page cache, which may still hold what
	 * this host read before another host (the source, on shared storage)
	 * wrote a new image: drop it, so that every read comes from the disk.
	 */
	posix_fadvise(pf->fd, 0, 0, POSIX_FADV_DONTNEED);
	ret = pread_all(pf->fd, &sb, sizeof(sb), 0);
	if (ret)
		return why(pf, -ret, "cannot read the superblock: %s", strerror(-ret));
	if (memcmp(sb.magic, VMPF_PF_MAGIC, 8))
		return why(pf, EINVAL, "not a vmpagefile page file (bad magic)");
	crc = le32toh(sb.crc);
	sb.crc = 0;
	if (pf_crc32c(&sb, sizeof(sb)) != crc)
		return why(pf, EBADMSG, "the superblock is corrupt (crc mismatch)");
	sb.crc = htole32(crc);
	if (le32toh(sb.version) < VMPF_PF_VERSION_MIN || le32toh(sb.version) > VMPF_PF_VERSION)
		return why(pf, EPROTONOSUPPORT, "format version %u, this tool reads versions %u to %u",
			   le32toh(sb.version), VMPF_PF_VERSION_MIN, VMPF_PF_VERSION);
	n = le32toh(sb.nr_regions);
	pages = le64toh(sb.total_pages);
	if (le32toh(sb.page_size) != VMPF_PF_PAGE_SIZE || !n || n > VMPF_MAX_REGIONS ||
	    !pages || pages > (1ULL << 40) || sb.flags ||
	    le64toh(sb.state_max) > (1ULL << 30) || le64toh(sb.state_max) % VMPF_PF_BLOCK)
		return why(pf, EINVAL, "the superblock holds impossible values");
	/* As the kernel checks them (kernel/pagefile.c): usable as memslots. */
	for (i = 0; i < n; i++) {
		const struct vmpf_pf_region *a = &sb.regions[i];
		uint64_t gpa = le64toh(a->gpa), end = gpa + le64toh(a->pages) * VMPF_PF_PAGE_SIZE;
		int none = le32toh(a->slot) == VMPF_PF_SLOT_NONE;
		uint32_t j;

		if (le64toh(a->first_page) != total || !le64toh(a->pages) ||
		    le64toh(a->pages) > pages - total || gpa % VMPF_PF_PAGE_SIZE ||
		    end <= gpa || (le32toh(a->slot) > 0x7fff && !none) ||
		    (none && (le32toh(sb.version) < 2 || gpa || a->flags)))
			return why(pf, EINVAL, "the region table is inconsistent");
		for (j = 0; !none && j < i; j++) {
			const struct vmpf_pf_region *b = &sb.regions[j];
			uint64_t bg = le64toh(b->gpa), be = bg + le64toh(b->pages) * VMPF_PF_PAGE_SIZE;

			if (le32toh(b->slot) == VMPF_PF_SLOT_NONE)
				continue;
			if (a->slot == b->slot || (gpa < be && bg < end))
				return why(pf, EINVAL, "the region table has overlapping regions");
		}
		total += le64toh(a->pages);
	}
	want = 2 * VMPF_PF_BLOCK + ((pages * 8 + VMPF_PF_BLOCK - 1) & ~(uint64_t)(VMPF_PF_BLOCK - 1));
	if (total != pages || le64toh(sb.table_off) != 2 * VMPF_PF_BLOCK ||
	    le64toh(sb.state_off) != want ||
	    le64toh(sb.data_off) != want + le64toh(sb.state_max) ||
	    le64toh(sb.file_size) != le64toh(sb.data_off) + pages * VMPF_PF_PAGE_SIZE)
		return why(pf, EINVAL, "the layout in the superblock is inconsistent");
	size = lseek(pf->fd, 0, SEEK_END);
	if (size >= 0 && (uint64_t)size < le64toh(sb.file_size))
		return why(pf, EINVAL, "the file is %lld bytes, its superblock says %llu: cut short",
			   (long long)size, (unsigned long long)le64toh(sb.file_size));
	pf->sb = sb;

	ret = pread_all(pf->fd, &c, sizeof(c), VMPF_PF_BLOCK);
	if (ret)
		return why(pf, -ret, "cannot read the commit record: %s", strerror(-ret));
	crc = le32toh(c.crc);
	c.crc = 0;
	if (memcmp(c.magic, VMPF_PF_COMMIT_MAGIC, 8))
		why(pf, 0, "no commit record: the migration did not finish");
	else if (pf_crc32c(&c, sizeof(c)) != crc)
		why(pf, 0, "the commit record is torn or corrupt");
	else if (c.generation != sb.generation)
		why(pf, 0, "the commit record belongs to an earlier migration");
	else if (le64toh(c.state_len) > le64toh(sb.state_max))
		why(pf, 0, "the commit record's device-state length is impossible");
	else
		pf->committed = 1;
	c.crc = htole32(crc);
	pf->commit = c;
	if (pf->committed)
		pf_read_lease(pf);
	return 0;
}

void pf_close(struct pf *pf)
{
	if (pf->fd >= 0)
		close(pf->fd);
	free(pf->table);
	pf->fd = -1;
	pf->table = NULL;
}

int pf_load_table(struct pf *pf)
{
	uint64_t pages = le64toh(pf->sb.total_pages);
	size_t len = (pages * 8 + VMPF_PF_BLOCK - 1) & ~(size_t)(VMPF_PF_BLOCK - 1);
	int ret;

	pf->table = calloc(1, len ? len : 1);
	if (!pf->table)
		return why(pf, ENOMEM, "out of memory for the page table");
	ret = pread_all(pf->fd, pf->table, len, le64toh(pf->sb.table_off));
	if (ret)
		return why(pf, -ret, "cannot read the page table: %s", strerror(-ret));
	if (pf->committed && pf_crc32c(pf->table, len) != le32toh(pf->commit.table_crc))
		return why(pf, EBADMSG, "the page table is corrupt (crc mismatch)");
	return 0;
}

int pf_read_state(struct pf *pf, void **state, size_t *len)
{
	size_t n = le64toh(pf->commit.state_len);
	void *buf;
	int ret;

	if (!pf->committed)
		return why(pf, EINVAL, "uncommitted: %s", pf->why);
	buf = malloc(n ? n : 1);
	if (!buf)
		return why(pf, ENOMEM, "out of memory");
	ret = pread_all(pf->fd, buf, n, le64toh(pf->sb.state_off));
	if (!ret && pf_crc32c(buf, n) != le32toh(pf->commit.state_crc))
		ret = -EBADMSG;
	if (ret) {
		free(buf);
		return why(pf, -ret, "the device state is unreadable or corrupt");
	}
	*state = buf;
	*len = n;
	return 0;
}

int pf_read_page(struct pf *pf, uint64_t idx, void *buf)
{
	const struct vmpf_pf_page *e = &pf->table[idx];
	int ret;

	if (e->state != VMPF_PAGE_DATA) {
		memset(buf, 0, VMPF_PF_PAGE_SIZE);
		return e->state == VMPF_PAGE_ZERO ? 0 :
		       why(pf, ENODATA, "page %llu was never written", (unsigned long long)idx);
	}
	ret = pread_all(pf->fd, buf, VMPF_PF_PAGE_SIZE,
			le64toh(pf->sb.data_off) + idx * VMPF_PF_PAGE_SIZE);
	if (ret)
		return why(pf, -ret, "cannot read page %llu: %s", (unsigned long long)idx,
			   strerror(-ret));
	if (pf_crc32c(buf, VMPF_PF_PAGE_SIZE) != le32toh(e->crc))
		return why(pf, EBADMSG, "page %llu is corrupt (crc mismatch)",
			   (unsigned long long)idx);
	return 0;
}

int pf_history(const char *path, struct vmpf_pf_commit *c, char *msg, size_t len)
{
	struct pf pf;
	int ret = pf_open(&pf, path);

	if (ret) {
		snprintf(msg, len, "%s: %s", path, pf.why);
	} else if (!pf.committed) {
		snprintf(msg, len, "%s holds no committed migration to learn from: %s", path,
			 pf.why);
		ret = -ENODATA;
	} else if (!(le64toh(pf.commit.flags) & VMPF_PF_COMMIT_HISTORY)) {
		snprintf(msg, len, "%s was committed by a module that kept no history (0.1)",
			 path);
		ret = -ENODATA;
	} else if (le32toh(pf.commit.throttle_pct) > 99) {
		snprintf(msg, len, "%s: its history has an impossible throttle", path);
		ret = -EINVAL;
	} else {
		*c = pf.commit;
	}
	pf_close(&pf);
	return ret;
}

/* Block 1 of @fd (O_DIRECT) into @blk, a 4096-aligned buffer. */
static int pf_read_block1(int fd, void *blk)
{
	return pread(fd, blk, VMPF_PF_BLOCK, VMPF_PF_BLOCK) == VMPF_PF_BLOCK ? 0 :
	       errno ? -errno : -EIO;
}

static int pf_lease_of(const void *blk, const struct vmpf_pf_super *sb, struct vmpf_pf_lease *l)
{
	uint32_t crc;

	memcpy(l, (const char *)blk + (VMPF_PF_LEASE_OFF - VMPF_PF_BLOCK), sizeof(*l));
	crc = le32toh(l->crc);
	l->crc = 0;
	if (memcmp(l->magic, VMPF_PF_LEASE_MAGIC, 8) || l->generation != sb->generation ||
	    pf_crc32c(l, sizeof(*l)) != crc)
		return 0;
	l->crc = htole32(crc);
	l->host[sizeof(l->host) - 1] = 0;
	return 1;
}

static double pf_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int pf_revoke(const char *path, int force, char *msg, size_t len)
{
	struct vmpf_pf_lease l, now, mine;
	struct utsname un;
	struct pf pf;
	void *blk = NULL;
	int fd = -1, ret, had;
	double end;

	ret = pf_open(&pf, path);
	if (ret || !pf.committed) {
		snprintf(msg, len, "%s holds no committed image: nothing to revoke (%s)", path,
			 pf.why);
		pf_close(&pf);
		return -ENODATA;
	}
	fd = open(path, O_RDWR | O_DIRECT | O_CLOEXEC);
	if (fd < 0 || posix_memalign(&blk, VMPF_PF_BLOCK, VMPF_PF_BLOCK)) {
		ret = -errno;
		snprintf(msg, len, "cannot open %s read-write with O_DIRECT: %s", path,
			 strerror(errno));
		goto out;
	}
	ret = pf_read_block1(fd, blk);
	if (ret) {
		snprintf(msg, len, "cannot read %s: %s", path, strerror(-ret));
		goto out;
	}
	had = pf_lease_of(blk, &pf.sb, &l);
	if (had && !force) {
		switch (le32toh(l.state)) {
		case VMPF_LEASE_REVOKED:
			snprintf(msg, len, "already revoked (host %s): no destination restores it",
				 (const char *)l.host);
			ret = 0;
			goto out;
		case VMPF_LEASE_READING:
		case VMPF_LEASE_RESTORED:
			/* Alive if it renews within its period and a quarter. */
			end = pf_now() + le32toh(l.lease_ms) * 1.25e-3;
			while (pf_now() < end) {
				usleep(le32toh(l.lease_ms) * 50);
				ret = pf_read_block1(fd, blk);
				if (ret || !pf_lease_of(blk, &pf.sb, &now) ||
				    memcmp(&now, &l, sizeof(l)))
					break;
			}
			if (pf_now() < end) {
				snprintf(msg, len,
					 "the VM runs on host %s (pid %u) from this image: the source must not run it too",
					 (const char *)l.host, le32toh(l.pid));
				ret = -EBUSY;
				goto out;
			}
			snprintf(msg, len,
				 "host %s restored this image and stopped renewing its lease: the VM ran there after the commit, so its disks moved on since the source paused; --force revokes all the same",
				 (const char *)l.host);
			ret = -EALREADY;
			goto out;
		default:
			snprintf(msg, len,
				 "the VM ran on host %s after the commit (its restore has ended): its disks moved on since the source paused; --force revokes all the same",
				 (const char *)l.host);
			ret = -EALREADY;
			goto out;
		}
	}

	memset(&mine, 0, sizeof(mine));
	memcpy(mine.magic, VMPF_PF_LEASE_MAGIC, 8);
	mine.generation = pf.sb.generation;
	mine.owner = htole64(((uint64_t)getpid() << 32) ^ (uint64_t)(pf_now() * 1e9));
	mine.takeovers = htole64(had ? le64toh(l.takeovers) + 1 : 1);
	mine.acquired_ns = htole64((uint64_t)time(NULL) * 1000000000ULL);
	mine.state = htole32(VMPF_LEASE_REVOKED);
	mine.pid = htole32(getpid());
	if (!uname(&un))
		memcpy(mine.host, un.nodename, strnlen(un.nodename, sizeof(mine.host) - 1));
	mine.crc = htole32(pf_crc32c(&mine, sizeof(mine)));
	memcpy((char *)blk + (VMPF_PF_LEASE_OFF - VMPF_PF_BLOCK), &mine, sizeof(mine));
	if (pwrite(fd, blk, VMPF_PF_BLOCK, VMPF_PF_BLOCK) != VMPF_PF_BLOCK || fsync(fd)) {
		ret = errno ? -errno : -EIO;
		snprintf(msg, len, "writing the revocation into %s failed: %s", path, strerror(-ret));
		goto out;
	}
	/* As the kernel's lease: a destination that took it at the same moment. */
	usleep(100000);
	ret = pf_read_block1(fd, blk);
	if (!ret && (!pf_lease_of(blk, &pf.sb, &now) || memcmp(&now, &mine, sizeof(mine)))) {
		snprintf(msg, len,
			 "a destination took the image at the same moment (host %s): do not resume the source",
			 (const char *)now.host);
		ret = -EBUSY;
		goto out;
	}
	if (!ret)
		snprintf(msg, len,
			 "revoked: no destination restores this image now (unless forced); the source VM may run again");
out:
	free(blk);
	if (fd >= 0)
		close(fd);
	pf_close(&pf);
	return ret;
}
