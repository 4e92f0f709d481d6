/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vmpagefile tracepoints, under events/vmpagefile/ in tracefs:
 *   vmpf_round  a source pre-copy round ended
 *   vmpf_fill   a restored page was brought in, by a fault or the prefetch
 *   vmpf_fault  a fault on a restored page waited for a read
 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM vmpagefile

#if !defined(_VMPF_TRACE_H) || defined(TRACE_HEADER_MULTI_READ)
#define _VMPF_TRACE_H

#include <linux/tracepoint.h>

TRACE_EVENT(vmpf_round,
	TP_PROTO(u64 round, u64 dirty, u64 written, u64 zero, u64 bytes,
		 u64 duration_ns),
	TP_ARGS(round, dirty, written, zero, bytes, duration_ns),
	TP_STRUCT__entry(
		__field(u64, round)
		__field(u64, dirty)
		__field(u64, written)
		__field(u64, zero)
		__field(u64, bytes)
		__field(u64, duration_ns)
	),
	TP_fast_assign(
		__entry->round = round;
		__entry->dirty = dirty;
		__entry->written = written;
		__entry->zero = zero;
		__entry->bytes = bytes;
		__entry->duration_ns = duration_ns;
	),
	TP_printk("round=%llu dirty=%llu written=%llu zero=%llu bytes=%llu duration_ns=%llu",
		  __entry->round, __entry->dirty, __entry->written, __entry->zero,
		  __entry->bytes, __entry->duration_ns)
);

TRACE_EVENT(vmpf_policy,
	TP_PROTO(u64 round, u64 dirty, u64 est_downtime_ns, u64 throttle_pct,
		 bool ready, bool not_converging),
	TP_ARGS(round, dirty, est_downtime_ns, throttle_pct, ready, not_converging),
	TP_STRUCT__entry(
		__field(u64, round)
		__field(u64, dirty)
		__field(u64, est_downtime_ns)
		__field(u64, throttle_pct)
		__field(bool, ready)
		__field(bool, not_converging)
	),
	TP_fast_assign(
		__entry->round = round;
		__entry->dirty = dirty;
		__entry->est_downtime_ns = est_downtime_ns;
		__entry->throttle_pct = throttle_pct;
		__entry->ready = ready;
		__entry->not_converging = not_converging;
	),
	TP_printk("round=%llu dirty=%llu est_downtime_ns=%llu throttle_pct=%llu ready=%d not_converging=%d",
		  __entry->round, __entry->dirty, __entry->est_downtime_ns,
		  __entry->throttle_pct, __entry->ready, __entry->not_converging)
);

TRACE_EVENT(vmpf_fill,
	TP_PROTO(u64 page, bool demand, u8 state, int result),
	TP_ARGS(page, demand, state, result),
	TP_STRUCT__entry(
		__field(u64, page)
		__field(bool, demand)
		__field(u8, state)
		__field(int, result)
	),
	TP_fast_assign(
		__entry->page = page;
		__entry->demand = demand;
		__entry->state = state;
		__entry->result = result;
	),
	TP_printk("page=%llu by=%s state=%u result=%d", __entry->page,
		  __entry->demand ? "fault" : "prefetch", __entry->state,
		  __entry->result)
);

TRACE_EVENT(vmpf_fault,
	TP_PROTO(u64 page, u64 latency_ns, int result),
	TP_ARGS(page, latency_ns, result),
	TP_STRUCT__entry(
		__field(u64, page)
		__field(u64, latency_ns)
		__field(int, result)
	),
	TP_fast_assign(
		__entry->page = page;
		__entry->latency_ns = latency_ns;
		__entry->result = result;
	),
	TP_printk("page=%llu latency_ns=%llu result=%d", __entry->page,
		  __entry->latency_ns, __entry->result)
);

#endif /* _VMPF_TRACE_H */

#undef TRACE_INCLUDE_PATH
#define TRACE_INCLUDE_PATH .
#undef TRACE_INCLUDE_FILE
#define TRACE_INCLUDE_FILE trace
#include <trace/define_trace.h>
