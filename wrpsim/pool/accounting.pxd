# Cython declarations for `accounting.py` (pure-Python mode,
# `wrpsim._native`): the root of `Instance`'s chain
# holds every attribute of `Instance` (its `__slots__`): every mixin's methods read them
# as struct fields.
# Attributes are Python objects (`object`) except the hot numbers, which are C types
# (`double`, `long long`, `bint`; `kv` is the `KVLedger` type): each always holds a float, or
# an int, or a bool, whatever the configuration (an int 0 never reaches the output where a
# float is stored), so their values do not change; `tests/test_native.py` lists them.

cimport cython

from wrpsim.metrics.qoe cimport QoEMeter
from wrpsim.pool.kvcache cimport KVLedger
from wrpsim.pool.sequence cimport Seq


cdef class AccountingMixin:
    cdef dict __dict__
    cdef public double _c_cum
    cdef public object _chunks
    cdef public long long _ctx_const
    cdef public object _cum
    cdef public object _cutoff
    cdef public long long _dec_in_iter
    cdef public double _dur
    cdef public double _e_cum
    cdef public object _end_fn
    cdef public object _fresh
    cdef public object _late
    cdef public object _heap
    cdef public double _in_area
    cdef public long long _in_system
    cdef public double _in_t
    cdef public bint _kick
    cdef public long long _kind
    cdef public bint _lag
    cdef public double _load_s
    cdef public object _mh
    cdef public object _mi
    cdef public long long _n
    cdef public double _power
    cdef public long long _pre_tokens
    cdef public object _pushes
    cdef public object _qbase
    cdef public object _qs
    cdef public object _qt
    cdef public object _slice
    cdef public double _t0
    cdef public long long _token
    cdef public object _watermark
    cdef public object _win
    cdef public object _wk
    cdef public bint busy
    cdef public double busy_s
    cdef public object completed
    cdef public long long decode_iterations
    cdef public long long decode_tokens
    cdef public object down
    cdef public object down_s
    cdef public object down_since
    cdef public object encode_s
    cdef public double energy_j
    cdef public object env
    cdef public object epoch
    cdef public object failures
    cdef public object frontend
    cdef public object gpus
    cdef public object handed_off
    cdef public object incoming
    cdef public object index
    cdef public long long iterations
    cdef public object itl
    cdef public KVLedger kv
    cdef public object kv_bytes_per_token
    cdef public object kv_load_blocks
    cdef public object kv_mode
    cdef public object kv_sent_bytes
    cdef public object latency
    cdef public object layers
    cdef public object lost_handler
    cdef public object max_context
    cdef public object max_run_steps
    cdef public object model
    cdef public long long n_dec
    cdef public object n_ready
    cdef public object name
    cdef public object nic_free_by_group
    cdef public object on_received
    cdef public object outgoing
    cdef public object pool
    cdef public object power_log
    cdef public object preemptions
    cdef public long long prefill_tokens
    cdef public object prefilling
    cdef public object prefix
    cdef public object price_per_gpu_hour
    cdef public object qoe
    cdef public object reservations
    cdef public object role
    cdef public object running
    cdef public object sched
    cdef public object sink
    cdef public object state_bytes_per_seq
    cdef public long long step
    cdef public long long tp
    cdef public object tracer
    cdef public object transfer
    cdef public object waiting

    @cython.locals(joules=cython.double, nd=cython.longlong)
    cpdef _count_decode_run(self, double dur, long long n)

    @cython.locals(gpu_s=cython.double, c_cum=cython.double, e_cum=cython.double)
    cpdef _charge_decoder(self, Seq seq)

    @cython.locals(m=QoEMeter, y0=cython.double, thr=cython.double)
    cpdef _stint_qoe(self, Seq seq)
