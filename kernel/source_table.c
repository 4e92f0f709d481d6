// SPDX-License-Identifier: GPL-2.0
/*
 * The source's page table, kept small.
 *
 * The table takes 8 bytes a page on storage (0.2 % of guest RAM); the
 * module's goal for all of a session's memory is 0.1 %.  So the source
 * keeps only a write-back cache of whole 4 KiB table blocks (each holds
 * 512 pages' entries, 2 MiB of guest RAM): source_table_cache percent of
 * the blocks, at least 2.  What stays in memory for every block is its
 * crc32c as written (the commit record's table_crc is combined from them,
 * as before), a "changed since written" and a "written in this session"
 * bit, and its slot in the cache.
 *
 * A round copies pages in ascending order, so it visits each table block
 * once, in order: a block it leaves is done for the round.  A block is
 * written back when it is evicted (with the changed blocks next to it, in
 * one request: round 0 writes the table as it goes, in runs) or at the
 * end of the round, as before, so the switch-over writes only what the
 * final round changed.  A block changed again after it was evicted is
 * read back first (table_reads in VMPF_IOC_DEV_INFO counts those reads)
 * and must be exactly what this session wrote, by its crc: a table
 * changed on storage under the migration fails it rather than lets the
 * commit vouch for entries nobody checked.  A block not yet written in
 * this session starts from zeros; an older image's table on the device is
 * never read.
 *
 * Everything here belongs to the session's worker thread, which alone
 * copies pages and commits: no lock.  Blocks are written and read with
 * the store's synchronous calls, which retry transient errors; the reads
 * vmpf_src_table_prime() starts at once are tried once, and a block whose
 * read failed there is read again, synchronously, when it is needed.
 */
#include <linux/crc32.h>
#include <linux/moduleparam.h>

#include "source.h"

static unsigned int source_table_cache = 12;
module_param(source_table_cache, uint, 0644);
MODULE_PARM_DESC(source_table_cache, "percent of a migration's page-table blocks the source keeps in memory (default 12; at least 2 blocks; 100: the whole table)");

/* Page-table entries in a 4 KiB block: 512 pages, 2 MiB of guest RAM. */
#define VMPF_STBL_PAGES	(VMPF_PF_BLOCK / sizeof(struct vmpf_pf_page))
#define VMPF_STBL_RUN	16		/* blocks written back in one request, at most */
#define VMPF_STBL_NONE	U64_MAX		/* an empty slot's block */
#define VMPF_STBL_PRIME	16		/* blocks read back at once before a round */

int vmpf_src_table_alloc(struct vmpf_source *src)
{
	struct vmpf_src_table *t = &src->tbl;
	unsigned int i, pct = min(READ_ONCE(source_table_cache), 100U);
	u64 slots;

	BUILD_BUG_ON(PAGE_SIZE != VMPF_PF_BLOCK);
	t->blocks = src->layout.table_len / VMPF_PF_BLOCK;
	slots = DIV_ROUND_UP_ULL(t->blocks * pct, 100);
	t->nr_slots = clamp_t(u64, slots, min_t(u64, 2, t->blocks), t->blocks);

	t->slot_page = vmpf_src_zalloc(src, t->nr_slots * sizeof(*t->slot_page));
	t->slot_block = vmpf_src_zalloc(src, t->nr_slots * sizeof(*t->slot_block));
	t->slot_ref = vmpf_src_zalloc(src, BITS_TO_LONGS(t->nr_slots) * sizeof(long));
	t->block_slot = vmpf_src_zalloc(src, t->blocks * sizeof(*t->block_slot));
	t->block_crc = vmpf_src_zalloc(src, t->blocks * sizeof(*t->block_crc));
	t->dirty = vmpf_src_zalloc(src, BITS_TO_LONGS(t->blocks) * sizeof(long));
	t->written = vmpf_src_zalloc(src, BITS_TO_LONGS(t->blocks) * sizeof(long));
	t->want = vmpf_src_zalloc(src, BITS_TO_LONGS(t->blocks) * sizeof(long));
	t->aio = vmpf_src_zalloc(src, VMPF_STBL_PRIME * sizeof(*t->aio));
	if (!t->slot_page || !t->slot_block || !t->slot_ref || !t->block_slot ||
	    !t->block_crc || !t->dirty || !t->written || !t->want || !t->aio)
		return -ENOMEM;
	for (i = 0; i < t->nr_slots; i++) {
		t->slot_block[i] = VMPF_STBL_NONE;
		t->slot_page[i] = alloc_page(GFP_KERNEL_ACCOUNT);
		if (!t->slot_page[i])
			return -ENOMEM;
		vmpf_src_account(src, PAGE_SIZE);
	}
	return 0;
}

/* Also after a failed vmpf_src_table_alloc(). */
void vmpf_src_table_free(struct vmpf_source *src)
{
	struct vmpf_src_table *t = &src->tbl;
	unsigned int i;

	for (i = 0; t->slot_page && i < t->nr_slots; i++)
		if (t->slot_page[i])
			__free_page(t->slot_page[i]);
	kvfree(t->slot_page);
	kvfree(t->slot_block);
	kvfree(t->slot_ref);
	kvfree(t->block_slot);
	kvfree(t->block_crc);
	kvfree(t->dirty);
	kvfree(t->written);
	kvfree(t->want);
	kvfree(t->aio);
}

/* Write blocks [@first, @end) (changed, hence cached) in one request. */
static int vmpf_src_table_write_run(struct vmpf_source *src, u64 first, u64 end)
{
	struct vmpf_src_table *t = &src->tbl;
	struct page *pages[VMPF_STBL_RUN];
	unsigned int n = end - first, i;
	int ret;

	for (i = 0; i < n; i++) {
		pages[i] = t->slot_page[t->block_slot[first + i] - 1];
		t->block_crc[first + i] = vmpf_raw_crc32c(0, page_address(pages[i]),
							  VMPF_PF_BLOCK);
	}
	ret = vmpf_store_write_pages(&src->store, pages, n,
				     src->layout.table_off + first * VMPF_PF_BLOCK);
	if (ret) {
		vmpf_source_fail(src, -ret, "writing the page table failed (error %d)", ret);
		return ret;
	}
	bitmap_clear(t->dirty, first, n);
	bitmap_set(t->written, first, n);
	return 0;
}

/*
 * Write every changed block, in runs.  Before the commit this leaves the
 * whole table on storage, as the commit record's table_crc describes it.
 */
int vmpf_src_table_write(struct vmpf_source *src)
{
	struct vmpf_src_table *t = &src->tbl;
	u64 b = 0, end;
	int ret;

	for (;;) {
		b = find_next_bit(t->dirty, t->blocks, b);
		if (b >= t->blocks)
			return 0;
		end = find_next_zero_bit(t->dirty, t->blocks, b);
		end = min(end, b + VMPF_STBL_RUN);
		ret = vmpf_src_table_write_run(src, b, end);
		if (ret)
			return ret;
		b = end;
	}
}

/* vmpf_crc32c() of the whole table as written, from its blocks' crcs. */
u32 vmpf_src_table_crc(struct vmpf_source *src)
{
	struct vmpf_src_table *t = &src->tbl;
	u32 crc = ~0U;
	u64 b;

	/* A block never written is zeros, whose crc from seed 0 is 0. */
	for (b = 0; b < t->blocks; b++)
		crc = __crc32c_le_combine(crc, t->block_crc[b], VMPF_PF_BLOCK);
	return crc ^ ~0U;
}

/* Empty slot @s, writing its block first if changed, with its neighbours. */
static int vmpf_src_table_empty(struct vmpf_source *src, unsigned int s)
{
	struct vmpf_src_table *t = &src->tbl;
	u64 b = t->slot_block[s], first, end;
	int ret;

	if (b == VMPF_STBL_NONE)
		return 0;
	if (test_bit(b, t->dirty)) {
		first = b;
		end = b + 1;
		while (first && end - first < VMPF_STBL_RUN && test_bit(first - 1, t->dirty))
			first--;
		while (end < t->blocks && end - first < VMPF_STBL_RUN && test_bit(end, t->dirty))
			end++;
		ret = vmpf_src_table_write_run(src, first, end);
		if (ret)
			return ret;
	}
	t->block_slot[b] = 0;
	t->slot_block[s] = VMPF_STBL_NONE;
	return 0;
}

/*
 * A slot to load a block into: the clock algorithm (a slot used since the
 * hand last passed gets another turn), emptied.
 */
static int vmpf_src_table_evict(struct vmpf_source *src, unsigned int *slot)
{
	struct vmpf_src_table *t = &src->tbl;
	unsigned int s;

	for (;;) {
		s = t->hand;
		t->hand = s + 1 < t->nr_slots ? s + 1 : 0;
		if (!__test_and_clear_bit(s, t->slot_ref))
			break;
	}
	*slot = s;
	return vmpf_src_table_empty(src, s);
}

/* Is block @b, just read into @p, what this session wrote?  Else fail. */
static int vmpf_src_table_check(struct vmpf_source *src, u64 b, const void *p)
{
	atomic64_inc(&vmpf_counters.table_reads);
	if (vmpf_raw_crc32c(0, p, VMPF_PF_BLOCK) == src->tbl.block_crc[b])
		return 0;
	vmpf_source_fail(src, EIO,
			 "page-table block %llu on storage is not what this migration wrote: is another host writing to the page file?",
			 b);
	return -EIO;
}

/* Cache block @b in slot @s. */
static void vmpf_src_table_install(struct vmpf_src_table *t, u64 b, unsigned int s)
{
	t->slot_block[s] = b;
	t->block_slot[b] = s + 1;
	__set_bit(s, t->slot_ref);
}

/*
 * Before a round copies its pending pages (the final one with the guest
 * paused): read back the evicted blocks they will change, the first
 * VMPF_STBL_PRIME of them, with all the reads in flight at once, so that
 * the round waits for about one read rather than one per block in turn.
 * Only into slots whose blocks the round does not change.  A block left
 * out, or whose read fails, is read when the round reaches it (with the
 * store's retries).  0, or -errno (the session has failed).
 */
int vmpf_src_table_prime(struct vmpf_source *src)
{
	struct vmpf_src_table *t = &src->tbl;
	unsigned int i, n = 0, s = 0, slot[VMPF_STBL_PRIME];
	u64 b, p, blk[VMPF_STBL_PRIME];
	int ret = 0, err;

	bitmap_zero(t->want, t->blocks);
	for (i = 0; i < src->nr_regions; i++) {
		struct vmpf_sregion *r = &src->regions[i];

		for (p = find_first_bit(r->pending, r->npages); p < r->npages;
		     p = find_next_bit(r->pending, r->npages, p)) {
			b = div_u64(r->first_page + p, VMPF_STBL_PAGES);
			__set_bit(b, t->want);
			p = (b + 1) * VMPF_STBL_PAGES - r->first_page;	/* the next block */
		}
	}
	for (b = find_first_bit(t->want, t->blocks); b < t->blocks && n < VMPF_STBL_PRIME;
	     b = find_next_bit(t->want, t->blocks, b + 1)) {
		if (t->block_slot[b] || !test_bit(b, t->written))
			continue;
		while (s < t->nr_slots && t->slot_block[s] != VMPF_STBL_NONE &&
		       test_bit(t->slot_block[s], t->want))
			s++;
		if (s >= t->nr_slots)
			break;
		ret = vmpf_src_table_empty(src, s);
		if (ret)
			return ret;
		blk[n] = b;
		slot[n++] = s++;
	}
	for (i = 0; i < n; i++)
		vmpf_store_read_start(&src->store, &t->aio[i], t->slot_page[slot[i]],
				      src->layout.table_off + blk[i] * VMPF_PF_BLOCK);
	/* Every read started is waited for, whatever the others did. */
	for (i = 0; i < n; i++) {
		if (vmpf_store_read_wait(&t->aio[i]) || ret)
			continue;
		err = vmpf_src_table_check(src, blk[i], page_address(t->slot_page[slot[i]]));
		if (err)
			ret = err;
		else
			vmpf_src_table_install(t, blk[i], slot[i]);
	}
	return ret;
}

/* Block @b's entries in the cache, loaded if need be, or an ERR_PTR(). */
static struct vmpf_pf_page *vmpf_src_table_block(struct vmpf_source *src, u64 b)
{
	struct vmpf_src_table *t = &src->tbl;
	unsigned int s = t->block_slot[b];
	void *p;
	int ret;

	if (s) {
		__set_bit(s - 1, t->slot_ref);
		return page_address(t->slot_page[s - 1]);
	}
	ret = vmpf_src_table_evict(src, &s);
	if (ret)
		return ERR_PTR(ret);
	p = page_address(t->slot_page[s]);
	if (!test_bit(b, t->written)) {
		clear_page(p);
	} else {
		ret = vmpf_store_read_page(&src->store, t->slot_page[s],
					   src->layout.table_off + b * VMPF_PF_BLOCK);
		if (ret) {
			vmpf_source_fail(src, -ret,
					 "reading back the page table failed (error %d)", ret);
			return ERR_PTR(ret);
		}
		ret = vmpf_src_table_check(src, b, p);
		if (ret)
			return ERR_PTR(ret);
	}
	vmpf_src_table_install(t, b, s);
	return p;
}

/*
 * Record page @idx in the table; its block goes out when evicted or at the
 * end of the round (vmpf_src_table_write()).  0 or -errno (the session has
 * failed then).
 */
int vmpf_src_table_set(struct vmpf_source *src, u64 idx, u8 state, u32 crc, u64 round)
{
	u64 b = div_u64(idx, VMPF_STBL_PAGES);
	struct vmpf_pf_page *e = vmpf_src_table_block(src, b);

	if (IS_ERR(e))
		return PTR_ERR(e);
	e += idx - b * VMPF_STBL_PAGES;
	if (e->state == VMPF_PAGE_DATA)
		src->nr_data--;
	else if (e->state == VMPF_PAGE_ZERO)
		src->nr_zero--;
	e->state = state;
	e->crc = cpu_to_le32(crc);
	e->round = cpu_to_le16(min_t(u64, round, U16_MAX));
	if (state == VMPF_PAGE_DATA)
		src->nr_data++;
	else
		src->nr_zero++;
	__set_bit(b, src->tbl.dirty);
	return 0;
}
