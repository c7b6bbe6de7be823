# Cython declarations for `model.py` (pure-Python mode, `wrpsim._native`): `KernelLatency` is a
# final extension type (nothing derives from it: its methods call each other as C functions,
# with no look-up for an override), a virtual subclass of the ABC `LatencyModel`, which an
# extension type cannot derive from. Its attributes are its `__slots__`, with an instance dict
# for the attributes callers add.
# Attributes are Python objects (`object`; `list` / `dict` where they always hold one) except
# the hot numbers, which are C types (`double`, `long long`, `bint`): each always holds a
# float, or an int (a count of layers or tokens, a group size), or a bool, so its value does
# not change; `tests/test_native.py` lists them. The hot methods are `cpdef` with C-typed
# arguments and locals: counts as `long long`, token pairs and contexts as `double` (an int
# argument converts exactly, and every division of the original is a true division of values
# below 2**53, so each float operation rounds as Python's does: no `cdivision`).

cimport cython


@cython.final
cdef class KernelLatency:
    cdef dict __dict__
    cdef public bint _async
    cdef public double _cpu0
    cdef public double _cpu_seq
    cdef public object _dec
    cdef public object _dec_f
    cdef public dict _dec_power
    cdef public dict _dec_rows
    cdef public object _dec_s
    cdef public list _dec_sl
    cdef public double _eager
    cdef public double _floor
    cdef public object _gdn
    cdef public dict _gdn_rows
    cdef public list _gdn_sl
    cdef public bint _graph_mixed
    cdef public object _head
    cdef public list _head_list
    cdef public object _layers_total
    cdef public object _lin
    cdef public list _lin_list
    cdef public list _lin_bound
    cdef public bint _has_bound
    cdef public list _head_bound
    cdef public bint _dsa
    cdef public double _dsa_pair
    cdef public double _dsa_pick
    cdef public object _dsa_tables
    cdef public double _idx_dec
    cdef public double _idx_pre
    cdef public object _idx_k
    cdef public double _mamba_dec
    cdef public object _mla_tables
    cdef public long long _n_full
    cdef public long long _n_gdn
    cdef public long long _n_slide
    cdef public object _power
    cdef public object _power_c
    cdef public object _pre
    cdef public object _pre_f
    cdef public dict _pre_rows
    cdef public list _pre_s
    cdef public dict _run_consts
    cdef public bint _split
    cdef public object _stream
    cdef public long long _window
    cdef public object _work_c
    cdef public long long adp
    cdef public object atp
    cdef public object c
    cdef public object calibration
    cdef public object coll_tp
    cdef public object dense_dtype
    cdef public object attn_dtype
    cdef public object engine
    cdef public object ep
    cdef public object gpu
    cdef public object kernels
    cdef public object kv_dtype
    cdef public object mamba_state_bytes
    cdef public long long max_tokens
    cdef public object model
    cdef public object moe_dtype
    cdef public object precision
    cdef public bint schedule_lag
    cdef public object tp

    cpdef double _lin_at(self, long long t)

    cpdef double _head_at(self, long long m)

    @cython.locals(t=cython.longlong, pre_seqs=cython.longlong, m=cython.longlong,
                   top=cython.longlong, lin=cython.double, head=cython.double,
                   g=cython.double)
    cpdef double gpu_s(self, long long prefill_tokens, double prefill_attn,
                       long long decode_seqs, double decode_ctx, long long prefill_seqs=*)

    @cython.locals(g=cython.double, seqs=cython.longlong, cpu=cython.double)
    cpdef double iteration_s(self, long long prefill_tokens, double prefill_attn,
                             long long decode_seqs, double decode_ctx,
                             long long prefill_seqs=*)

    cpdef decode_run_cum_s(self, long long batch, ctx0, long long n)

    @cython.locals(c0=cython.double, s=list, c1=cython.double, lo=cython.double,
                   hi=cython.double, i=Py_ssize_t, w=cython.longlong, consts=tuple, row=list,
                   rowf=list, mamba=cython.double, saturated=cython.double,
                   fixed=cython.double, cpu=cython.double, r=cython.double, r1=cython.double,
                   slope=cython.double, slope_f=cython.double, slope_all=cython.double,
                   idx_b=cython.double,
                   t0=cython.double, lay=cython.longlong, a=cython.double, idx=cython.double)
    cpdef decode_run_linear(self, long long batch, double ctx0, long long n)

    @cython.locals(row=list, s=list, w=cython.longlong, consts=tuple)
    cpdef tuple _decode_run_consts(self, long long batch)

    cpdef long long _group_seqs(self, long long batch)

    @cython.locals(row=tuple, b=cython.double)
    cpdef tuple _dec_row(self, long long batch)

    @cython.locals(rows=tuple, row=list, s=list, t=cython.double, w=cython.longlong)
    cpdef double _decode_attn1(self, long long batch, double c)

    @cython.locals(b=cython.longlong, s=cython.double, ctx=cython.double,
                   br=cython.longlong, pr=cython.double, rows=tuple, row=list, drows=tuple,
                   drow=list, s_dec=list,
                   t_pairs=cython.double, t_read=cython.double, total=cython.double,
                   w=cython.double, p=cython.double, pw=cython.double)
    cpdef double _prefill_attn(self, long long seqs, long long tokens, double pairs)

    cpdef frontend_s(self, prompt_tokens)

    cpdef frontend_work_s(self, prompt_tokens)

    cpdef frontend_stream_s(self)
    cpdef handover_s(self)

    @cython.locals(t_tok=cython.longlong, seqs=cython.longlong, c=tuple, lin=cython.double,
                   head=cython.double, attn=cython.double, fixed=cython.double,
                   experts=cython.double, kv=cython.double, stream=cython.double,
                   peak=cython.double, bw=cython.double, state=cython.double,
                   active=cython.double, w_c=cython.double, w_m=cython.double,
                   idle=cython.double, span=cython.double, ctx=cython.double,
                   pairs=cython.double, flops=cython.double, touched=cython.double,
                   nbytes=cython.double, dur=cython.double, dur_c=cython.double,
                   top=cython.longlong, f=cython.double)
    cpdef power_w(self, long long prefill_tokens, long long decode_seqs, decode_ctx=*,
                  duration_s=*, prefill_attn=*, long long prefill_seqs=*)

    @cython.locals(t=tuple, n=cython.longlong, lin=cython.double, head=cython.double,
                   attn=cython.double, fixed=cython.double, experts=cython.double,
                   kv=cython.double, stream=cython.double, peak=cython.double,
                   bw=cython.double, state=cython.double, active=cython.double,
                   w_c=cython.double, w_m=cython.double, idle=cython.double,
                   span=cython.double, flops0=cython.double, bytes0=cython.double,
                   b_stream=cython.double, b_state=cython.double, ctx=cython.double,
                   flops=cython.double, nbytes=cython.double, dur=cython.double,
                   bnd=cython.double, dur_c=cython.double, f=cython.double)
    cpdef decode_power_w(self, long long decode_seqs, decode_ctx, duration_s)


@cython.locals(top=cython.double, r=cython.double, i=Py_ssize_t, lo=cython.double,
               hi=cython.double, r1=cython.double, w=cython.double)
cpdef double _interp1(double c, list s, list row)

@cython.locals(top=cython.double, r=cython.double, i=Py_ssize_t, lo=cython.double,
               hi=cython.double, r1=cython.double)
cpdef double _len_time(list row, list s_grid, double s)

cpdef double _window_pairs(double n, double w)

@cython.locals(s=cython.double, s_ref=cython.double, r=cython.double, i=Py_ssize_t,
               lo=cython.double, hi=cython.double, r1=cython.double, w=cython.double)
cpdef double _pairs_time(list row, list s_grid, double b, double pairs)
