# Cython declarations for `sequence.py` (pure-Python mode,
# `wrpsim._native`): `Seq` is an extension type.
# Attributes are Python objects (`object`) except the attributed resources and the share
# counters (`double`: always floats, from 0.0), so no value changes.

cdef class Seq:
    cdef public object admit_s
    cdef public object arrived_s
    cdef public object ask_s
    cdef public object blocks
    cdef public double c0
    cdef public double cost_usd
    cdef public object done
    cdef public object dst_blocks
    cdef public double e0
    cdef public double energy_j
    cdef public object enq_s
    cdef public object first_token_s
    cdef public object gen
    cdef public double gpu_s
    cdef public object grant_s
    cdef public object handoff
    cdef public object heap_no
    cdef public object hit_blocks
    cdef public object hit_tokens
    cdef public object kv0
    cdef public object kv_ready
    cdef public object pinned
    cdef public object preemptions
    cdef public object prefill_end_s
    cdef public object prefill_inst
    cdef public object promote
    cdef public object qoe
    cdef public object req
    cdef public object reserved
    cdef public object s0
    cdef public object s_fin
    cdef public object second_token_s
    cdef public object shared
    cdef public object state
    cdef public object target
    cdef public object win
    cdef public object xfer
    cdef public object xfer_bytes
