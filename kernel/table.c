// SPDX-License-Identifier: GPL-2.0
/*
 * A restore session's page table, kept small.
 *
 * On storage the table takes 8 bytes a page (0.2 % of guest RAM); the
 * module's goal for all of a session's memory is 0.1 %.  So the table is
 * read once at open, in 256 KiB pieces, and checked against the commit
 * record's table_crc as before, and what stays in memory is
 *  - each page's state, in two bits (@data, @zero; neither: never written),
 *  - the prefetch's order, two bits a table block (@hot: how recent the
 *    round of its page copied last was, see vmpf_hot_class()),
 *  - the crc32c of each 4 KiB table block (@block_crc: 4 bytes for 512
 *    pages).
 * A page's own crc32c is needed only once, when the page is filled: it is
 * read again with its table block, which is checked against the block's
 * crc (a table changed on storage since the open refuses the page rather
 * than lets anything unchecked in), and a cache keeps the crcs of the
 * blocks used last.  The cache holds table_cache percent of the table's
 * blocks (default three quarters: a session's memory is then about 0.09 %
 * of guest RAM and a few KiB), two-way set associative.  A fill
 * whose block is not in it reads 4 KiB more (table_reads in
 * VMPF_IOC_DEV_INFO counts those reads): a demand fault while it reads
 * the page (vmpf_table_crc_begin()), the prefetch before its run.  The
 * prefetch walks the table in order and loads each block about once a
 * pass.  The price of not keeping the table: a table block that can no
 * longer be read (after io_retries) refuses the data pages of it that
 * were not filled yet, as their own unreadable sectors would.
 */
#include <linux/crc32.h>
#include <linux/highmem.h>
#include <linux/moduleparam.h>
#include <linux/vmalloc.h>

#include "restore.h"

static unsigned int table_cache = 75;
module_param(table_cache, uint, 0644);
MODULE_PARM_DESC(table_cache, "percent of a restore's page-table blocks whose crcs are kept in memory (default 75; at least 2 blocks)");

/* Sized by the file: charged to the caller, and failing quietly. */
#define VMPF_TABLE_GFP	(GFP_KERNEL_ACCOUNT | __GFP_ZERO | __GFP_NOWARN | __GFP_RETRY_MAYFAIL)

/* Page-table entries in a 4 KiB block: 512 pages, 2 MiB of guest RAM. */
#define VMPF_TBLK_PAGES	(VMPF_PF_BLOCK / sizeof(struct vmpf_pf_page))

struct vmpf_tslot {
	u64 tag;			/* table block + 1; 0: empty */
	u32 crc[VMPF_TBLK_PAGES];
};

/* The prefetch class of a page last copied in @round of @rounds: 3 first. */
static unsigned int vmpf_hot_class(u64 round, u64 rounds)
{
	u64 last = rounds ? min_t(u64, rounds - 1, U16_MAX) : 0;
	u64 age = round >= last ? 0 : last - round;

	/* The final round, the one before it, the two before that, the rest. */
	return age == 0 ? 3 : age == 1 ? 2 : age <= 3 ? 1 : 0;
}

/*
 * Take in the entries of table block @blk (@e): the pages' states, and the
 * block's prefetch class, its hottest page's.
 */
static void vmpf_table_scan(struct vmpf_restore *rst, const struct vmpf_pf_page *e,
			    unsigned int blk, u64 rounds)
{
	u64 first = (u64)blk * VMPF_TBLK_PAGES, idx;
	unsigned int i, hot = 0;

	for (i = 0; i < VMPF_TBLK_PAGES && first + i < rst->total_pages; i++) {
		idx = first + i;
		if (e[i].state == VMPF_PAGE_DATA)
			__set_bit(idx, rst->data);
		else if (e[i].state == VMPF_PAGE_ZERO)
			__set_bit(idx, rst->zero);
		hot = max(hot, vmpf_hot_class(le16_to_cpu(e[i].round), rounds));
	}
	if (hot & 1)
		__set_bit(blk, rst->hot[0]);
	if (hot & 2)
		__set_bit(blk, rst->hot[1]);
	rst->hot_pages[hot] += i;
}

/*
 * Read the page table (@table_len bytes at @table_off), check it against
 * @table_crc, and keep what is said above.  Memory is charged to the
 * caller and counted in *@bytes.
 */
int vmpf_table_load(struct vmpf_restore *rst, u64 table_off, size_t table_len,
		    u32 table_crc, u64 rounds, size_t *bytes)
{
	size_t bitmap = BITS_TO_LONGS(rst->total_pages) * sizeof(long), done, chunk, i;
	/* At most 2^18 blocks: VMPF_MAX_PAGES is 2^27. */
	unsigned int blocks = table_len / VMPF_PF_BLOCK, sets;
	u32 crc = ~0U;
	void *buf;
	u64 b;
	int ret;

	rst->table_off = table_off;
	rst->table_blocks = blocks;
	sets = max(1U, DIV_ROUND_UP(blocks * min(READ_ONCE(table_cache), 100U), 200));
	rst->tc_sets = sets;
	spin_lock_init(&rst->tc_lock);

	/* kvzalloc: 2^27 pages need 16 MiB of bitmap, past kmalloc's limit. */
	rst->data = kvzalloc(bitmap, VMPF_TABLE_GFP);
	rst->zero = kvzalloc(bitmap, VMPF_TABLE_GFP);
	rst->hot[0] = kvcalloc(BITS_TO_LONGS(blocks), sizeof(long), VMPF_TABLE_GFP);
	rst->hot[1] = kvcalloc(BITS_TO_LONGS(blocks), sizeof(long), VMPF_TABLE_GFP);
	rst->block_crc = kvcalloc(blocks, sizeof(u32), VMPF_TABLE_GFP);
	rst->tc_lru = kvcalloc(BITS_TO_LONGS(sets), sizeof(long), VMPF_TABLE_GFP);
	rst->tc_slots = __vmalloc(2 * sets * sizeof(struct vmpf_tslot), VMPF_TABLE_GFP);
	if (!rst->data || !rst->zero || !rst->hot[0] || !rst->hot[1] ||
	    !rst->block_crc || !rst->tc_lru || !rst->tc_slots)
		return -ENOMEM;
	*bytes += 2 * bitmap + 2 * BITS_TO_LONGS(blocks) * sizeof(long) +
		  blocks * sizeof(u32) + BITS_TO_LONGS(sets) * sizeof(long) +
		  2 * sets * sizeof(struct vmpf_tslot);

	/* Read in pieces: the whole table is never in memory at once. */
	chunk = min_t(size_t, table_len, VMPF_IO_PAGES * PAGE_SIZE);
	buf = vmalloc(chunk);
	if (!buf)
		return -ENOMEM;
	for (done = 0, ret = 0; done < table_len && !ret; done += chunk) {
		size_t len = min(chunk, table_len - done);

		ret = vmpf_store_read_buf(&rst->store, buf, len, table_off + done);
		if (ret)
			break;
		for (i = 0; i < len / VMPF_PF_BLOCK; i++) {
			void *p = buf + i * VMPF_PF_BLOCK;

			b = done / VMPF_PF_BLOCK + i;
			/* Seed 0, not inverted: what crc32c_combine() takes. */
			rst->block_crc[b] = vmpf_raw_crc32c(0, p, VMPF_PF_BLOCK);
			crc = __crc32c_le_combine(crc, rst->block_crc[b], VMPF_PF_BLOCK);
			vmpf_table_scan(rst, p, b, rounds);
		}
		cond_resched();
	}
	vfree(buf);
	if (!ret && (crc ^ ~0U) != table_crc)
		ret = -EBADMSG;
	return ret;
}

void vmpf_table_free(struct vmpf_restore *rst)
{
	kvfree(rst->data);
	kvfree(rst->zero);
	kvfree(rst->hot[0]);
	kvfree(rst->hot[1]);
	kvfree(rst->block_crc);
	kvfree(rst->tc_lru);
	vfree(rst->tc_slots);
}

/* The cached crc of page @idx: true if its block is in the cache. */
static bool vmpf_tc_get(struct vmpf_restore *rst, u64 idx, u32 *crc)
{
	unsigned int blk = idx / VMPF_TBLK_PAGES, set = blk % rst->tc_sets;
	struct vmpf_tslot *s = &rst->tc_slots[2 * set];
	bool hit = false;
	unsigned int w;

	spin_lock(&rst->tc_lock);
	for (w = 0; w < 2; w++) {
		if (s[w].tag != blk + 1)
			continue;
		*crc = s[w].crc[idx % VMPF_TBLK_PAGES];
		/* Bit set: way 1 was used last. */
		__assign_bit(set, rst->tc_lru, w);
		hit = true;
		break;
	}
	spin_unlock(&rst->tc_lock);
	return hit;
}

/* Keep the crcs of block @blk (@e, checked), in the way not used last. */
static void vmpf_tc_put(struct vmpf_restore *rst, unsigned int blk,
			const struct vmpf_pf_page *e)
{
	unsigned int set = blk % rst->tc_sets;
	struct vmpf_tslot *s = &rst->tc_slots[2 * set];
	unsigned int w, i;

	spin_lock(&rst->tc_lock);
	if (s[0].tag == blk + 1 || s[1].tag == blk + 1)
		goto out;		/* another reader was first */
	w = !s[0].tag ? 0 : !s[1].tag ? 1 : !test_bit(set, rst->tc_lru);
	for (i = 0; i < VMPF_TBLK_PAGES; i++)
		s[w].crc[i] = le32_to_cpu(e[i].crc);
	s[w].tag = blk + 1;
	__assign_bit(set, rst->tc_lru, w);
out:
	spin_unlock(&rst->tc_lock);
}

/*
 * Table block @blk, read into @page: check it against its crc from the
 * open and keep it; page @idx's crc32c to *@crc.  -EBADMSG if it changed.
 */
static int vmpf_table_took(struct vmpf_restore *rst, unsigned int blk, struct page *page,
			   u64 idx, u32 *crc)
{
	struct vmpf_pf_page *e = kmap_local_page(page);
	int ret = 0;

	atomic64_inc(&vmpf_counters.table_reads);
	if (vmpf_raw_crc32c(0, e, VMPF_PF_BLOCK) != rst->block_crc[blk]) {
		ret = -EBADMSG;
	} else {
		vmpf_tc_put(rst, blk, e);
		*crc = le32_to_cpu(e[idx % VMPF_TBLK_PAGES].crc);
	}
	kunmap_local(e);
	return ret;
}

static loff_t vmpf_table_pos(struct vmpf_restore *rst, unsigned int blk)
{
	return rst->table_off + (loff_t)blk * VMPF_PF_BLOCK;
}

/*
 * The crc32c that data page @idx must have, from the cache or from its
 * table block on storage.  May sleep: a read, as the page's own does,
 * where the page's own would be done (fault.c says why a fault may sleep
 * there, the mm lock held or not); the caller holds no spinlock.  -EBADMSG
 * if the block on storage is no longer the one checked at open (its data
 * pages are refused); -EAGAIN, -EINTR, -ENOMEM as a page read gives them
 * (not final); another error after io_retries (final, like a page's).
 */
int vmpf_table_page_crc(struct vmpf_restore *rst, u64 idx, u32 *crc)
{
	unsigned int blk = idx / VMPF_TBLK_PAGES;
	struct page *page;
	int ret;

	if (vmpf_tc_get(rst, idx, crc))
		return 0;
	page = alloc_page(GFP_KERNEL);
	if (!page)
		return -ENOMEM;
	/* store_sem: the page file is not let go of during the read. */
	down_read(&rst->store_sem);
	ret = !rst->store.file || blk >= rst->table_blocks ? -EIO :
	      vmpf_store_read_page(&rst->store, page, vmpf_table_pos(rst, blk));
	up_read(&rst->store_sem);
	if (!ret)
		ret = vmpf_table_took(rst, blk, page, idx, crc);
	__free_page(page);
	return ret;
}

/*
 * vmpf_table_page_crc() in two halves, for a demand fault: begin, read the
 * page, end, so that a table block not cached is read while the page is
 * (two requests in flight, not one after the other).  0: the crc is in
 * *@crc already; 1: a read is in flight, which vmpf_table_crc_end() must
 * end; else an error as vmpf_table_page_crc()'s, and nothing in flight.
 */
int vmpf_table_crc_begin(struct vmpf_restore *rst, u64 idx, u32 *crc,
			 struct vmpf_table_read *tr)
{
	tr->blk = idx / VMPF_TBLK_PAGES;
	if (vmpf_tc_get(rst, idx, crc))
		return 0;
	tr->page = alloc_page(GFP_KERNEL);
	if (!tr->page)
		return -ENOMEM;
	/* The read takes its own reference to the file: see storage.c. */
	down_read(&rst->store_sem);
	if (!rst->store.file || tr->blk >= rst->table_blocks) {
		up_read(&rst->store_sem);
		__free_page(tr->page);
		return -EIO;
	}
	vmpf_store_read_start(&rst->store, &tr->aio, tr->page, vmpf_table_pos(rst, tr->blk));
	up_read(&rst->store_sem);
	return 1;
}

/*
 * Wait for the read vmpf_table_crc_begin() started and give page @idx's
 * crc32c.  A read that failed is done again the way vmpf_table_page_crc()
 * does it, with its retries; errors as there.
 */
int vmpf_table_crc_end(struct vmpf_restore *rst, u64 idx, u32 *crc,
		       struct vmpf_table_read *tr)
{
	int ret = vmpf_store_read_wait(&tr->aio);

	if (!ret)
		ret = vmpf_table_took(rst, tr->blk, tr->page, idx, crc);
	__free_page(tr->page);
	if (ret && ret != -EBADMSG)
		ret = vmpf_table_page_crc(rst, idx, crc);
	return ret;
}
