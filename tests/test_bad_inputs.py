"""A corpus of bad command lines: each ends with one line `wrpsim: error: …` and status 2 (no
traceback, no silent run), or runs with one `wrpsim: warning: …` line. In-process calls of the
Hydra app, as a user's `python -m wrpsim …` (a subprocess each would cost ~2 s of start-up)."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
from pathlib import Path

import pytest

from tests.conftest import run_app
from wrpsim.errors import WrpsimWarning

SMALL = "workload.max_requests=10"


def one_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith("[")]
    assert len(lines) == 1 and lines[0].startswith("wrpsim: error: "), err
    assert "Traceback" not in err
    return lines[0]


BAD = [
    (["seed=abc"], r"seed must be an integer >= 0, got 'abc'"),
    (["seed=1.5"], r"seed must be an integer >= 0, got 1\.5"),
    (["seed=-1"], r"seed must be an integer >= 0, got -1"),
    # Hydra merges a command-line mapping into the config's: {} would silently clear nothing
    (["qoe={}"], r"^wrpsim: error: qoe=\{\} changes nothing: Hydra merges a mapping given on the "
                 r"command line into the config's, so qoe keeps its keys \(ttft_s, tokens_per_s, "
                 r"target\); remove an entry with ~qoe\.NAME \(e\.g\. ~qoe\.ttft_s\)$"),
    # an infinite or NaN horizon ran, wrote null costs, then died formatting them
    *[([f"sim.horizon_s={v}"], rf"sim\.horizon_s must be a finite number > 0 and <= "
                              rf"100000000 or null, got {shown}$")
      for v, shown in (("inf", "inf"), ("nan", "nan"), ("abc", "'abc'"), ("0", "0"),
                       ("1e12", "1000000000000\\.0"))],
    (["+slo.ttf_s=1"], r"slo: unknown key\(s\) \['ttf_s'\]; valid keys: ttft_s, tpot_s; "
                       r"did you mean 'ttft_s'\?"),
    (["slo.ttf_s=1"], r"slo\.ttf_s: unknown key; valid keys under slo: ttft_s, tpot_s; "
                      r"did you mean 'ttft_s'\?"),
    (["foo=1"], r"^wrpsim: error: foo: unknown key; valid keys: (?=.*\bworkload\b)(?=.*\bpool\b)"
               r"(?=.*\brouter\b)"),
    (["workload.count=100000"], r"workload\.count: unknown key; valid keys under workload: "
                                r"name, .*max_requests"),
    (["pool.pools.h100.tp=64"], r"pool\.pools\.h100\.tp=64 spans more than one 8-GPU server.*"
                                r"tp must be at most 8"),
    (["pool.pools.h100.count=1000000"], r"1,000,000 instances \(pool\.pools\.h100\.count="
                                        r"1000000\); at most 100,000"),
    (["router=least-outstandin"], r"^wrpsim: error: router: unknown value 'least-outstandin'; "
                                  r"valid choices: .*round-robin.*; did you mean "
                                  r"'least-outstanding'\?$"),
    (["router=least-outstanding", "+router.rules_x=1"],
     r"^wrpsim: error: router: unknown key\(s\) \['rules_x'\]; wrpsim\.router\.LeastOutstanding "
     r"takes no settings$"),
    (["router=power-of-d", "+router.dd=3"],
     r"^wrpsim: error: router \(wrpsim\.router\.PowerOfD\): unknown key\(s\) \['dd'\]; "
     r"valid keys: .*\bd\b.*; did you mean 'd'\?$"),
    (["pool=nope"], r"^wrpsim: error: pool: unknown value 'nope'; valid choices: .*h100-llama70b"),
    (["router=cascade"], r"^wrpsim: error: router\.models: a cascade needs at least two models; "
                         r"got llama3\.1-70b, and the fleet serves: llama3\.1-70b \(a pool per "
                         r"model"),
    (["router=output-length-aware", "router.output_predictor.kind=bogus"],
     r"^wrpsim: error: router\.output_predictor\.kind: unknown value 'bogus'; valid choices: "
     r"constant, lognormal, oracle$"),
    # the long side got nothing, with only the idle-pool warning to say so
    (["pool=short-long-context", "router=token-budget", "router.short_pools=[short]",
      "router.long_pools=[short]"],
     r"^wrpsim: error: router\.short_pools and router\.long_pools both list short: a pool is "
     r"short or long, not both$"),
    # a typo in network.kind was reported as another key's ("collective_alpha_us applies only
    # with a fabric") under network=fluid, whose file sets that key
    (["network=fluid", "network.kind=fluidd"],
     r"^wrpsim: error: network\.kind: unknown value 'fluidd'; valid choices: fluid, nic, none, "
     r"packet; did you mean 'fluid'\?$"),
    # network.kind=nic / none on another group's file named a key the user never set
    # (collective_alpha_us, or nic_gbps "got None"): the line says to pick the group
    *[(args, rf"^wrpsim: error: network\.kind={k}: the other keys of this network config are "
             rf"another network's; choose the network with its config group, network={k} ")
      for args, k in ((["network=fluid", "network.kind=nic"], "nic"),
                      (["network=packet", "network.kind=none"], "none"),
                      (["network.kind=nic"], "nic"))],
    (["network=fluid", "network.gpus_per_host=2"],
     r"^wrpsim: error: pool\.pools\.h100\.tp=4 spans servers of 2 GPUs \(network\."
     r"gpus_per_host\) whose collectives are not simulated"),
    (["workload=nope"], r"workload: unknown value 'nope'; valid choices: .*azure-conv-2023"),
    (["+experiment=nope"], r"experiment: unknown value 'nope'; valid choices: overload, "),
    (["hydra/launcher=nope"], r"hydra/launcher: unknown value 'nope'; valid choices: basic, "
                              r"joblib, ray, slurm"),
    (["seed=[1"], r"bad override 'seed=\[1'"),
    (["pool.pools.h100.scheduler.token_budget=100000000000"],
     r"^wrpsim: error: pool\.pools\.h100\.scheduler\.token_budget must be an integer in "
     r"1\.\.1,048,576, got 100000000000$"),
    (["pool.pools.h100.scheduler.max_seqs=0"],
     r"pool\.pools\.h100\.scheduler\.max_seqs must be an integer in 1\.\.65,536, got 0"),
    (["pool.pools.h100.model=llama3.1-405b"],  # weights leave no KV room: the pool is named
     r"^wrpsim: error: pool\.pools\.h100: llama3\.1-405b needs 189\.0 GiB of weights per GPU "
     r"at tp=4 \(bf16\) on h100-80gb .* leaving no room for one KV block of 16 tokens: more "
     r"GPUs \(tp\), a narrower precision or a GPU with more memory$"),
    (["pool.pools.h100.model=llama3.1-8b", "pool.pools.h100.precision=mxfp4"],
     r"^wrpsim: error: pool\.pools\.h100\.precision: mxfp4 quantises the routed experts only "
     r".*llama3\.1-8b is dense, so it would run as bf16: use one of bf16, fp4, fp4_attn_bf16, "
     r"fp8, fp8_block$"),
    (["pool.pools.h100.ep=4"],
     r"^wrpsim: error: pool\.pools\.h100\.ep: not set in this pool's config, so add it with a "
     r"'\+': \+pool\.pools\.h100\.ep=…; keys of a pool: gpu, model, tp, .*attn_dp"),
    # a scheduler key the fleet's file leaves out, and vLLM's names for wrpsim's keys
    (["pool.pools.h100.scheduler.gpu_mem_util=0.8"],
     r"^wrpsim: error: pool\.pools\.h100\.scheduler\.gpu_mem_util: not set in this pool's "
     r"config, so add it with a '\+': \+pool\.pools\.h100\.scheduler\.gpu_mem_util=…; "
     r"scheduler keys: policy, token_budget, max_seqs, block_size, gpu_mem_util, reserve_gib, "
     r"watermark$"),
    (["pool.pools.h100.scheduler.max_num_batched_tokens=8192"],
     r"^wrpsim: error: pool\.pools\.h100\.scheduler\.max_num_batched_tokens: unknown key; "
     r"vLLM's max_num_batched_tokens is pool\.pools\.h100\.scheduler\.token_budget here"),
    (["pool.pools.h100.max_num_seqs=64"],
     r"^wrpsim: error: pool\.pools\.h100\.max_num_seqs: unknown key; vLLM's max_num_seqs is "
     r"pool\.pools\.h100\.scheduler\.max_seqs here"),
    (["pool.pools.h100.scheduler.max_model_len=4096"],
     r"vLLM's max_model_len is pool\.pools\.h100\.max_context here \(with a '\+' first"),
    (["+pool.pools.h100.max_num_seqs=128"],
     r"pool\.pools\.h100: unknown key\(s\) \['max_num_seqs'\]; valid keys: .*; vLLM's "
     r"max_num_seqs is pool\.pools\.h100\.scheduler\.max_seqs here$"),
    (["workload=closed-loop", "workload.source.random_input_len=1024"],
     r"workload\.source\.random_input_len: unknown key; .*vllm bench serve's random_input_len: "
     r"workload\.source\.prompt_tokens$"),
    (["workload=vllm-bench", "workload.source.random_input_len=512"],
     r"workload\.source\.random_input_len: unknown key; .*vllm bench serve's random_input_len: "
     r"workload\.source\.lengths\.prompt\.value$"),
    (["workload=vllm-bench", "+workload.source.request_rate=16"],
     r"workload\.source\.request_rate: unknown key 'request_rate'; .*vllm bench serve's "
     r"request_rate is workload\.source\.arrivals\.rate here$"),
    (["workload=vllm-bench", "workload.request_rate=12"],
     r"^wrpsim: error: workload\.request_rate: unknown key; .*vllm bench serve's request_rate: "
     r"workload\.source\.arrivals\.rate$"),
    (["workload=vllm-bench", "+workload.num_prompts=600"],
     r"^wrpsim: error: workload\.num_prompts: unknown key 'num_prompts'; .*vllm bench serve's "
     r"num_prompts is workload\.source\.num_requests here$"),
    (["workload=vllm-bench", "workload.source.arrivals.burstiness=0.5"],
     r"burstiness: gamma arrivals .*\+\+workload\.source\.arrivals\.cv=1\.414$"),
    (["workload=vllm-bench", "+workload.source.arrivals.cv=1.4"],
     r"^wrpsim: error: workload\.source\.arrivals\.cv: not a key of poisson arrivals \(valid: "
     r"process, rate\); cv is gamma arrivals' \(workload\.source\.arrivals\.process=gamma\)$"),
    (["workload=vllm-bench", "workload.source.arrivals.process=gamma"],
     r"^wrpsim: error: workload\.source\.arrivals\.cv: gamma arrivals need cv, .*"
     r"--burstiness b: 1/sqrt\(b\)\), e\.g\. \+workload\.source\.arrivals\.cv=2$"),
    (["workload=vllm-bench", "workload.source.arrivals.rate=inf"],
     r"^wrpsim: error: workload\.source\.arrivals\.rate: inf \(every request at once, vllm "
     r"bench serve's --request-rate inf\) is a closed loop with one client per request: "
     r"workload=closed-loop workload\.source\.concurrency=N workload\.source\.num_requests=N$"),
    (["workload=gamma-bursty", "workload.source.random_input_len=100"],
     r"random_input_len: '\+\+workload\.source\.lengths\.prompt=\{dist: constant, value: 100, "
     r"mean: null, sigma: null, max: null\}'$"),
    (["workload=poisson-azure-cdf", "workload.source.random_input_len=100"],
     r"random_input_len: workload\.source\.lengths\.prompt\.value of workload=vllm-bench, "
     r"whose lengths are fixed \(this workload draws them otherwise: workload\.source\.lengths\)$"),
    (["workload.num_prompts=100"],
     r"^wrpsim: error: workload\.num_prompts: unknown key; .*vllm bench serve's num_prompts: "
     r"workload\.max_requests \(the trace's first N requests\)$"),
    (["+workload.source.num_prompts=100"],
     r"^wrpsim: error: workload\.source\.num_prompts: unknown key 'num_prompts'; .*vllm bench "
     r"serve's num_prompts: workload\.max_requests \(the trace's first N requests\)$"),
    (["workload.source.request_rate=3"],
     r"request_rate: workload\.rate_scale \(the trace's own arrivals, that many times faster\)$"),
    (["workload.source.max_concurrency=8"],
     r"max_concurrency: a cap on requests in flight, which a trace does not take"),
    (["workload=constant-rate", "workload.source.max_concurrency=8"],
     r"max_concurrency: a cap on requests in flight, which constant-rate stages do not take"),
    (["workload=closed-loop", "workload.source.request_rate=inf"],
     r"vllm bench serve's --request-rate inf \(every request at once\) is a closed loop with "
     r"one client per request: workload=closed-loop"),
    (["workload=vllm-bench", "workload.source.burstiness=4"],
     r"burstiness: gamma arrivals of cv 1/sqrt\(burstiness\): workload\.source\.arrivals"
     r"\.process=gamma \+\+workload\.source\.arrivals\.cv=0\.5$"),
    (["workload=closed-loop", "workload.source.request_rate=16"],
     r"request_rate: Poisson arrivals at workload=vllm-bench's workload\.source\.arrivals\.rate"),
    (["workload=closed-loop", "+workload.source.num_prompts=10"],
     r"workload\.source: unknown key\(s\) \['num_prompts'\]; .*vllm bench serve's "
     r"num_prompts is workload\.source\.num_requests here$"),
    (["pool.pools.h100.scheduler.tokn_budget=3"],
     r"scheduler keys \(those the pool's file leaves out are added with '\+'\): policy, .*; "
     r"did you mean 'token_budget'\?$"),
    # '+' on a key the config has (Hydra: "Could not append to config")
    (["+pool.pools.h100.kv_dtype=fp8"],
     r"^wrpsim: error: pool\.pools\.h100\.kv_dtype: set already in the config, so drop the '\+' "
     r"\(pool\.pools\.h100\.kv_dtype=…\), or write \+\+pool\.pools\.h100\.kv_dtype=… to set it"),
    # a mapping where a list belongs, and the other way round (OmegaConf: "Cannot merge
    # DictConfig with ListConfig", whichever it was)
    (["workload=constant-rate", "workload.source.stages={rate: 2, duration_s: 5}"],
     r"^wrpsim: error: workload\.source\.stages: expects a list, e\.g\. \[\{\.\.\.\}, "
     r"\{\.\.\.\}\], got a mapping$"),
    (["workload.source=[1,2]"],
     r"^wrpsim: error: workload\.source: expects a mapping, e\.g\. \{key: value\}, got a list$"),
    # a new pool under pool.pools is a new key: the line says how to add one
    (["pool.pools.h200={gpu: h200-141gb, model: llama3.1-70b, tp: 2, count: 2}"],
     r"^wrpsim: error: pool\.pools\.h200: unknown key; pool\.pools holds h100; to add a pool, "
     r"write \+pool\.pools\.h200=\{gpu: …, model: …, tp: …, count: …\} \(or did you mean "
     r"'h100'\?\)$"),
    (["pool=mixed-a100-h100", "workload.model_mix={}"],
     r"^wrpsim: error: workload\.model_mix: an empty mapping; give \{model: weight, \.\.\.\}"),
    (["workload=chat-sessions", "workload.source.max_context=0"],
     r"^wrpsim: error: workload\.source\.max_context must be > 1, got 0$"),
    (["failures=random", "failures.pools=[]"],
     r"^wrpsim: error: failures\.pools must be a non-empty list of pool names or null \(every "
     r"pool\), got \[\]; valid choices: h100$"),
    # sizes past what a run can hold (found by fuzzing: OverflowError, MemoryError, ValueError)
    (["router.replicas=999999999999999999999"],
     r"^wrpsim: error: router\.replicas must be an integer in \[1, 100,000\], got 9{21}$"),
    (["workload=vllm-bench", "workload.source.num_requests=1000000000000"],
     r"^wrpsim: error: workload\.source\.num_requests must be at most 50,000,000, got "
     r"1,000,000,000,000$"),
    (["router=output-length-aware", "router.output_predictor.sigma=inf"],
     r"^wrpsim: error: router\.output_predictor\.sigma must be a number >= 0 and <= 10"),
    (["workload=routellm-mmlu-gsm8k", "workload.start_s=99999"],
     r"^wrpsim: error: workload routellm-mmlu-gsm8k: no request left after the transforms"),
    (["workload=chat-sessions", "workload.source.system.prefixes=999999999999999999999"],
     r"^wrpsim: error: workload\.source\.system\.prefixes must be an integer in \[1, "
     r"10,000,000\], got 9{21}$"),
    (["router=power-of-d", "router.d=true"],
     r"^wrpsim: error: router\.d must be an integer >= 1, got True$"),
    (["pool.pools.h100.prefix_cache.capacity_blocks=true"],
     r"^wrpsim: error: pool\.pools\.h100\.prefix_cache\.capacity_blocks must be null or an "
     r"integer >= 0, got True$"),
    (["router=output-length-aware", "router.output_predictor.kind=constant",
      "router.output_predictor.value=inf"],
     r"^wrpsim: error: router\.output_predictor\.value must be a finite number >= 1, got inf$"),
    (["workload=routellm-mmlu-gsm8k", "workload.outcomes.chars_per_token=null"],
     r"^wrpsim: error: workload\.outcomes\.chars_per_token must be a finite number > 0, "
     r"got None$"),
    (["workload=routellm-mmlu-gsm8k", "workload.outcomes.models.small=[1,2]"],
     r"^wrpsim: error: workload\.outcomes\.models\.small: a model name \(catalog name\), got "
     r"\[1, 2\]$"),
    # a list where a name or number belongs: unhashable, it raised a TypeError
    (["workload=vllm-bench", "workload.source.arrivals.process=[]"],
     r"^wrpsim: error: workload\.source\.arrivals\.process: unknown value \[\]; valid choices: "
     r"deterministic, gamma, poisson$"),
    (["workload=vllm-bench", "workload.source.lengths.kind=[]"],
     r"^wrpsim: error: workload\.source\.lengths\.kind: unknown value \[\]; valid choices: "
     r"cdf, fitted$"),
    (["workload=chat-sessions", "workload.source.new_tokens.dist=[]"],
     r"^wrpsim: error: workload\.source\.new_tokens\.dist: unknown value \[\]; valid choices: "),
    (["+pool.pools.h100.latency={layer_overhead_us: [1]}"],
     r"^wrpsim: error: pool\.pools\.h100\.latency\.layer_overhead_us must be a finite number "
     r">= 0 and <= 10000000, got \[1\]$"),
    (["router=carrot-utility", "pool=two-model-mixtral-gpt4like", "workload=routellm-mmlu-gsm8k",
      "router.service.signal=[]"], r"^wrpsim: error: router\.service\.signal: unknown value "),
    # a decision of 1e21 s: the view's 1 s scrapes would tick through all of it
    (["router.service.time_s=1e21"], r"^wrpsim: error: router\.service\.time_s must be a "
                                     r"finite number >= 0 and <= 3600 or null, got 1e\+21$"),
    # a config group given a number, a boolean or null (Hydra raised a ValueError)
    (["failures=1"], r"^wrpsim: error: failures=1: a config group takes the name of one of its "
                     r"options; valid choices: none, random, scheduled$"),
    (["network=inf"], r"^wrpsim: error: network=inf: a config group takes the name of one of "
                      r"its options; valid choices: fluid, nic, none, packet$"),
    (["router=null"], r"^wrpsim: error: router=null: a config group takes .*round-robin, "),
    # an override with no key (`=5`) was taken for a config group named '': its "options" were
    # the root config files (calibrate, config, net, ...), and `~=5` a traceback
    *[(args, rf"^wrpsim: error: malformed override '{re.escape(args[-1])}': key=value "
             rf"expected, and it has no key before the '=' \(python -m wrpsim --help lists the "
             rf"keys\)$")
      for args in (["=5"], ["="], ["+=5"], ["~=5"], ["-m", "=5,6"])],
    # an empty name is no name (it stood for the default); a mapping where a name belongs
    (["pool.pools.h100.kv_dtype=''"],
     r"^wrpsim: error: pool\.pools\.h100\.kv_dtype: unknown value ''; valid choices: auto, "
     r"bf16, fp8$"),
    (["pool.pools.h100.engine=''"], r"^wrpsim: error: pool\.pools\.h100\.engine: unknown value ''"),
    (["router.service.signal={a: 1}"],
     r"^wrpsim: error: router\.service\.signal: unknown value \{'a': 1\}; valid choices: "
     r"cpu_classifier, "),
    # an integer beyond int64 (numpy's isfinite cannot take it)
    (["workload.start_s=999999999999999999999"],
     r"^wrpsim: error: workload azure-conv-2023: no request left after the transforms"),
    (["workload.start_s=" + "9" * 400],
     r"^wrpsim: error: workload\.start_s: a finite number is required, got 9{400}$"),
    (["pool=short-long-context", "failures=scheduled"],  # (the example event's pool: h100)
     r"^wrpsim: error: failures\.events\[0\]\.pool: unknown value 'h100'; valid choices: long, "
     r"short \(set it with failures\.events\.0\.pool=NAME\)$"),
    (["failures=scheduled", "failures.events=[]"],
     r"^wrpsim: error: failures: nothing would fail: give failures\.events"),
    (["failures=random", "failures.mtbf_s=null"], r"^wrpsim: error: failures: nothing would fail"),
    (["failures.policy=drop"],
     r"^wrpsim: error: failures\.policy: unknown key: the selected failures option sets no keys; "
     r"choose one that does first \(failures=NAME"),
    (["workload.source.kind=generic", "workload.source.path=workloads/traces/azure_conv_2023.csv",
      "workload.source.time_unit=hours"],
     r"^wrpsim: error: workload\.source\.time_unit: unknown key; valid keys under "
     r"workload\.source: kind, path \(a key this file leaves out is added with '\+': "
     r"\+workload\.source\.time_unit=…\)$"),
    # a key no source of that kind takes: not a '+' the source then refuses
    (["workload=constant-rate", "workload.source.rate=3"],
     r"^wrpsim: error: workload\.source\.rate: unknown key; valid keys under workload\.source: "
     r"kind, stages, spacing, prompt_tokens, output_tokens; a constant_rate source takes no "
     r"other key$"),
    # a length distribution replaced by a mapping with other keys: Hydra merges it into the
    # file's and refuses the new keys; the documented null recipe alone led here
    (["workload=vllm-bench",
      "workload.source.lengths.prompt={dist: uniform, low: 10, high: 300}"],
     r"^wrpsim: error: workload\.source\.lengths\.prompt\.(low|high): unknown key; valid keys "
     r"under workload\.source\.lengths\.prompt: dist, value; a distribution given as a mapping "
     r"is merged into the workload's own, so it adds no keys: write it with '\+\+' and each key "
     r"it drops as null, e\.g\. '\+\+workload\.source\.lengths\.prompt=\{dist: uniform, low: 10, "
     r"high: 300, value: null\}'$"),
    # a network key of other options: they are named, not a '+' the selected kind refuses;
    # with a '+' anyway the kind's line lists every key it takes (collectives' too)
    # (only fluid: the packet option lists packet_window only to refuse any window)
    (["network=nic", "network.packet_window=[1,2]"],
     r"^wrpsim: error: network\.packet_window: not a key of network=nic; the network options "
     r"with this key: fluid \(e\.g\. network=fluid network\.packet_window=\[1,2\]\)$"),
    (["network=fluid", "network.nic_gbps=100"],
     r"^wrpsim: error: network\.nic_gbps: not a key of network=fluid; the network options "
     r"with this key: nic \(e\.g\. network=nic network\.nic_gbps=100\)$"),
    (["network.lb=spray"],  # the default option (none)
     r"^wrpsim: error: network\.lb: not a key of network=none; the network options with this "
     r"key: fluid, packet \(e\.g\. network=fluid network\.lb=spray\)$"),
    # collectives is a boolean, not a config group with options
    (["network=fluid", "network.collectives.alpha_us=1"],
     r"^wrpsim: error: network\.collectives\.alpha_us: unknown key: network\.collectives is a "
     r"single value, not a section with keys; did you mean network\.collective_alpha_us=1\?$"),
    (["network=nic", "+network.packet_window=[1,2]"],
     r"^wrpsim: error: network \(kind nic\): unknown key\(s\) \['packet_window'\]; valid keys: "
     r"kind, nic_gbps, collectives$"),
    # on the default network (none) the hint selects an option that has the key
    (["network.collectives.alpha_us=1"],
     r"^wrpsim: error: network\.collectives\.alpha_us: unknown key: network\.collectives is a "
     r"single value, not a section with keys; did you mean network=fluid "
     r"network\.collective_alpha_us=1\?$"),
    # the collectives' latency does nothing without a fabric: refused, not silently accepted
    (["network=nic", "+network.collective_alpha_us=5"],
     r"^wrpsim: error: network\.collective_alpha_us applies only with a fabric \(network=fluid "
     r"or network=packet, with network\.collectives=true\), got network\.kind=nic$"),
    (["network=nic", "network.pakcet_window=3"],
     r"^wrpsim: error: network\.pakcet_window: unknown key; valid keys under network: kind, "
     r"nic_gbps, collectives; did you mean 'packet_window'\?$"),
    # a key of workload.source given one level up is pointed at where it belongs
    (["workload=closed-loop", "workload.concurrency=4"],
     r"^wrpsim: error: workload\.concurrency: unknown key; valid keys under workload: .*; did "
     r"you mean workload\.source\.concurrency\?$"),
    (["workload=closed-loop", "+workload.concurrency=4"],
     r"^wrpsim: error: workload\.concurrency: unknown key 'concurrency'; valid keys: .*; did "
     r"you mean workload\.source\.concurrency\?$"),
    (["workload=closed-loop", "+workload.think_s=1"],
     r"^wrpsim: error: workload\.think_s: unknown key 'think_s'; .*; did you mean "
     r"workload\.source\.think_s\?$"),
    (["workload.time_unit=ms"],
     r"^wrpsim: error: workload\.time_unit: unknown key; .*; did you mean "
     r"\+workload\.source\.time_unit=…\? \(a key of workload\.source this file leaves out "
     r"is added with '\+'\)$"),
    (["router=oracle", "pool=two-model-mixtral-gpt4like"],
     r"^wrpsim: error: router=oracle needs a workload that replays per-model outcomes"),
    (["router=token-budget", "pool=short-long-context", "router.boundary_tokens=10.5"],
     r"^wrpsim: error: router\.boundary_tokens must be an integer >= 1, got 10\.5$"),
    # pue: nan or inf gave null energy in summary.json and a crash printing it; 'true' ran as 1
    (["pue=nan"], r"^wrpsim: error: pue must be a finite number >= 1, got nan$"),
    (["pue=inf"], r"^wrpsim: error: pue must be a finite number >= 1, got inf$"),
    (["pue=abc"], r"^wrpsim: error: pue must be a finite number >= 1, got 'abc'$"),
    (["pue=true"], r"^wrpsim: error: pue must be a finite number >= 1, got True$"),
    (["pue=0.9"], r"^wrpsim: error: pue must be a finite number >= 1, got 0\.9$"),
    # KV tiers: nan / inf sizes were a ValueError traceback, a zero bandwidth a ZeroDivisionError
    (["+pool.pools.h100.kv_tiers.dram_gib=nan"],
     r"^wrpsim: error: pool\.pools\.h100\.kv_tiers\.dram_gib must be a finite number >= 0, "
     r"got nan$"),
    (["+pool.pools.h100.kv_tiers.dram_gib=inf"], r"kv_tiers\.dram_gib must be a finite number"),
    (["+pool.pools.h100.kv_tiers.pcie_gbps=0"],
     r"^wrpsim: error: pool\.pools\.h100\.kv_tiers\.pcie_gbps must be a finite number > 0, "
     r"got 0$"),
    (["+pool.remote_kv.capacity_gib=nan"],
     r"^wrpsim: error: pool\.remote_kv\.capacity_gib must be a finite number >= 0, got nan$"),
    (["+pool.remote_kv.nic_gbps=0"],
     r"^wrpsim: error: pool\.remote_kv\.nic_gbps must be a finite number > 0, got 0$"),
    (["workload.rate_scale=-1"], r"^wrpsim: error: workload\.rate_scale must be > 0, got -1$"),
    (["workload.prefix_ids=zz"], r"^wrpsim: error: workload\.prefix_ids: unknown value 'zz'"),
    (["pool.pools.h100.model=nope"], r"^wrpsim: error: pool\.pools\.h100\.model: unknown value "
                                     r"'nope'; valid choices: "),
    (["pool.pools.h100.tp=3"], r"^wrpsim: error: pool\.pools\.h100\.tp must be an integer >= 1 "
                               r"that divides the attention heads of llama3\.1-70b \(64\)"),
    # a boolean setting takes true or false, not any string as true ('off' ran with it on)
    (["workload=chat-sessions", "pool.pools.h100.prefix_cache.enabled=off"],
     r"^wrpsim: error: pool\.pools\.h100\.prefix_cache\.enabled must be true or false, "
     r"got 'off'$"),
    (["pool.pools.h100.prefix_cache.enabled=maybe"],
     r"^wrpsim: error: pool\.pools\.h100\.prefix_cache\.enabled must be true or false"),
    (["sim.trace=maybe"], r"^wrpsim: error: sim\.trace must be true or false, got 'maybe'$"),
    (["router=bandit-epsilon-greedy", "router.per_category=maybe"],
     r"^wrpsim: error: router\.per_category must be true or false, got 'maybe'$"),
    (["router=bandit-epsilon-greedy", "router.record=maybe"],
     r"^wrpsim: error: router\.record must be true or false, got 'maybe'$"),
    (["router=compress-route", "router.spill=maybe"],
     r"^wrpsim: error: router\.spill must be true or false, got 'maybe'$"),
    (["router.cache.enabled=maybe"],
     r"^wrpsim: error: router\.cache\.enabled must be true or false, got 'maybe'$"),
    (["workload=tracelab-agent", "workload.source.dependent=maybe"],
     r"^wrpsim: error: workload\.source\.dependent must be true or false, got 'maybe'$"),
    # a loader's option is named as the config has it, an unknown key is called a key
    (["workload=tracelab-agent", "workload.source.reuse=xx"],
     r"^wrpsim: error: workload\.source\.reuse: unknown value 'xx'; valid choices: context, "
     r"observed$"),
    (["workload=tracelab-agent", "+workload.source.bogus=1"],
     r"^wrpsim: error: workload\.source\.bogus: unknown key 'bogus'; valid keys: kind, path, "
     r"align_sessions, "),
    # a sweep over a group checks key overrides against the group's default option first:
    # the line says so and gives '++', which works for every option ('+' fails where it has it)
    (["-m", "workload=tracelab-agent,chat-sessions", "workload.source.dependent=true"],
     r"^wrpsim: error: workload\.source\.dependent: Hydra checks this key against the default "
     r"workload=azure-conv-2023 \(keys under workload\.source: kind, path\) before the command "
     r"line's workload=tracelab-agent,chat-sessions applies; write "
     r"\+\+workload\.source\.dependent=true "),
    (["-m", "router=round-robin,session-affinity", "router.max_outstanding=5"],
     r"^wrpsim: error: router\.max_outstanding: router=round-robin has no such key \(keys under "
     r"router: .*\), and a sweep sets every override in every job: sweep that option apart, "
     r"or write \+\+router\.max_outstanding=5 to add the key to every option"),
    # the option that lacks a swept key is named (it was "the default pool=h100-llama70b", which
    # has the key; "the selected failures option sets no keys" with failures=scheduled chosen)
    (["-m", "pool=h100-llama70b,h100-llama70b-disagg", "pool.pools.h100.count=2,3"],
     r"^wrpsim: error: pool\.pools\.h100: pool=h100-llama70b-disagg has no such key \(keys "
     r"under pool\.pools: prefill, decode\), .*\+\+pool\.pools\.h100\.count=2,3 "),
    (["-m", "failures=none,scheduled", "failures.policy=retry,drop"],
     r"^wrpsim: error: failures\.policy: failures=none has no such key \(no keys\)"),
    (["-m", "workload=azure-conv-2023,azure-code-2023", "workload.source.kindd=x"],
     r"^wrpsim: error: workload\.source\.kindd: unknown key: no option of the sweep "
     r"\(workload=azure-conv-2023,azure-code-2023\) has it; keys under workload\.source: "
     r"kind, path; did you mean 'kind'\?$"),
    (["router.cache.enabled=true", "router.cache.hit_model=trace"],
     r"^wrpsim: error: router\.cache\.hit_model: trace needs the trace's semantic_cluster "
     r"column, .*valid choices: curve$"),
    # a plugin's structured launcher config lists its keys like a YAML option does
    (["-m", "hydra/launcher=joblib", "hydra.launcher.n_jobz=2"],
     r"^wrpsim: error: hydra\.launcher\.n_jobz: unknown key; valid keys under hydra\.launcher: "
     r"_target_, n_jobs, .*; did you mean 'n_jobs'\?$"),
    (["-m", "hydra.launcher._target_=hydra_plugins.nomod.X"],
     r"the sweep launcher \(hydra/launcher\) cannot start: RuntimeError: Unknown plugin class"),
    # a scalar where a section belongs (were tracebacks)
    (["slo=2"], r"^wrpsim: error: slo must be a mapping with keys ttft_s, tpot_s, got 2$"),
    (["sim=1"], r"^wrpsim: error: sim must be a mapping with keys horizon_s, progress, trace, "
                r"got 1$"),
    (["pool.pools.h100.scheduler=3"],
     r"^wrpsim: error: pool\.pools\.h100\.scheduler must be a mapping of scheduler settings"),
    (["+pool.pools.h100.latency=3"],
     r"^wrpsim: error: pool\.pools\.h100\.latency must be a mapping of latency settings"),
    # a list where one name belongs: what a sweep is for (was a traceback)
    (["pool.pools.h100.gpu=[h100-80gb,h200-141gb]"],
     r"^wrpsim: error: pool\.pools\.h100\.gpu must be a name, got \['h100-80gb', "
     r"'h200-141gb'\]; to compare several, sweep them: python -m wrpsim -m "
     r"pool\.pools\.h100\.gpu=h100-80gb,h200-141gb$"),
    (["pool.pools.h100.precision=[fp8,bf16]"],
     r"^wrpsim: error: pool\.pools\.h100\.precision must be a name"),
    (["pool.pools.h100.engine={a: 1}"],
     r"^wrpsim: error: pool\.pools\.h100\.engine must be a name, got \{'a': 1\}$"),
    (["pool=h100-llama70b-disagg", "pool.pools.prefill.kv_transfer=layerwise"],
     r"kv_transfer must be a mapping with keys mode, got 'layerwise'; did you mean "
     r"pool\.pools\.prefill\.kv_transfer\.mode=layerwise\?$"),
    # NaN / inf were accepted: free KV transfers, a router scoring on NaN
    *[(["pool=h100-llama70b-disagg", "network=nic", f"network.nic_gbps={v}"],
       rf"^wrpsim: error: network\.nic_gbps must be a finite number > 0, got {v}$")
      for v in ("nan", "inf")],
    *[(["workload.prefix_ids=synthetic", "router=prefix-aware", f"router.{k}=nan"],
       rf"^wrpsim: error: router\.{k} must be a finite number >= ")
      for k in ("load_weight", "prefix_weight", "balance_abs_threshold")],
    (["workload.rate_scale=inf"], r"workload\.rate_scale: a finite number is required, got inf"),
    # a pool key or workload transform the file leaves out: every key listed, the nearest with
    # the '+' it needs (the pool's error listed its file's keys only, the workload's
    # suggested adding the typo itself with '+': new-user walkthrough, 2026-12-07)
    (["pool.pools.h100.max_contxt=5"],
     r"keys of a pool \(those its file leaves out are added with '\+'\): gpu, .*, max_context; "
     r"did you mean \+pool\.pools\.h100\.max_context=5\? \(a key the config leaves out is "
     r"added with '\+'\)$"),
    (["workload.rate_scal=2"], r"; did you mean 'rate_scale'\?$"),
    (["workload.outcome=x"], r"and, added with '\+' \(this file leaves them out\): outcomes, "
                             r".*; did you mean \+workload\.outcomes=x\?"),
    (["workload.outcomes=x"], r"^wrpsim: error: workload\.outcomes: not set in this workload's "
                              r"file, so add it with a '\+': \+workload\.outcomes=x$"),
    (["workload.accuracy.default=0.5"],
     r"^wrpsim: error: workload\.accuracy: not set in this workload's file, so add it with a "
     r"'\+': \+workload\.accuracy\.default=0\.5$"),
    (["pool.pools.h100.prefix_cach.enabled=true"],
     r"did you mean 'prefix_cache'\?$"),
    (["pool.pools.h100.kv_tier.dram_gib=8"],
     r"did you mean \+pool\.pools\.h100\.kv_tiers\.dram_gib=8\?"),
    # a router class misspelt: the package's routers are listed and the nearest suggested
    (["router._target_=wrpsim.router.RuleRoutr"],
     r"its routers: .*RuleRouter.*; did you mean 'RuleRouter'\?$"),
]


@pytest.mark.parametrize(("args", "message"), BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_command_line_gives_one_line_and_status_2(monkeypatch, capsys, tmp_path, args,
                                                      message):
    code, _, err = run_app(monkeypatch, capsys, tmp_path, SMALL, *args)
    assert code == 2
    assert re.search(message, one_error_line(err)), err
    assert not (tmp_path / "run" / "_DONE").exists()


def test_the_network_key_hint_gives_a_command_that_runs(monkeypatch, capsys, tmp_path):
    """The review's case: packet_window on network=nic. The line's example selects an option
    that has the key, and that command runs."""
    pool = "pool=h100-llama70b-disagg"
    code, _, err = run_app(monkeypatch, capsys, tmp_path, SMALL, pool, "network=nic",
                           "network.packet_window=[1,2]")
    assert code == 2
    example = re.search(r"\(e\.g\. ([^)]*)\)$", one_error_line(err)).group(1).split()
    assert example == ["network=fluid", "network.packet_window=[1,2]"]
    (tmp_path / "b").mkdir()
    code, _, err = run_app(monkeypatch, capsys, tmp_path / "b", SMALL, pool, *example)
    assert code == 0, err


def test_the_length_distribution_hint_gives_an_override_that_runs(monkeypatch, capsys,
                                                                   tmp_path):
    """workloads/README.md's recipe (the old keys as null) could not add a key the workload's
    own distribution lacks; the error's '++' mapping does, and the run draws from it."""
    base = ["workload=vllm-bench", "workload.source.num_requests=40"]
    code, _, err = run_app(monkeypatch, capsys, tmp_path, SMALL, *base,
                           "workload.source.lengths.prompt={dist: uniform, low: 10, high: 300}")
    assert code == 2
    fix = re.search(r"e\.g\. '([^']*)'$", one_error_line(err)).group(1)
    assert fix.startswith("++workload.source.lengths.prompt={dist: uniform, ")
    (tmp_path / "b").mkdir()
    code, _, err = run_app(monkeypatch, capsys, tmp_path / "b", SMALL, *base, fix)
    assert code == 0, err
    import pyarrow.parquet as pq

    prompts = pq.read_table(tmp_path / "b" / "run" / "requests.parquet").column(
        "prompt_tokens").to_pylist()
    assert 10 <= min(prompts) and max(prompts) <= 300 and len(set(prompts)) > 5


@pytest.mark.parametrize("module", ["wrpsim", "wrpsim.plan"])
def test_network_key_hints_are_the_same_in_the_plan(module):
    """`python -m wrpsim.plan` words a network key of another option, and a key under the
    `collectives` boolean, as `python -m wrpsim` does (one line, exit 2)."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root)}
    for args, line in [
        (["network=nic", "network.packet_window=[1,2]"],
         "wrpsim: error: network.packet_window: not a key of network=nic; the network options "
         "with this key: fluid (e.g. network=fluid network.packet_window=[1,2])"),
        (["network=fluid", "network.collectives.alpha_us=1"],
         "wrpsim: error: network.collectives.alpha_us: unknown key: network.collectives is a "
         "single value, not a section with keys; did you mean network.collective_alpha_us=1?"),
    ]:
        r = subprocess.run([sys.executable, "-m", module, *args], cwd=root, env=env,
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 2 and r.stderr.strip() == line, r.stderr


def test_the_collective_alpha_hint_runs(monkeypatch, capsys, tmp_path):
    """The suggested network.collective_alpha_us=1 is a run."""
    code, _, err = run_app(monkeypatch, capsys, tmp_path, SMALL, "network=fluid",
                           "network.collective_alpha_us=1")
    assert code == 0, err


def test_the_double_plus_the_sweep_error_gives_runs_for_every_option(monkeypatch, capsys,
                                                                    tmp_path):
    code, _, err = run_app(monkeypatch, capsys, tmp_path, "-m", SMALL,
                           "workload=tracelab-agent,chat-sessions",
                           "++workload.source.dependent=true")
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "sweep").iterdir() if p.is_dir()) == ["0", "1"]


def test_a_dead_worker_is_told_apart_from_a_launcher_that_cannot_start(tmp_path):
    from wrpsim.hydra_errors import explain

    class WorkerCrashedError(Exception):  # Ray's, by name: Ray need not be installed
        pass

    class RayTaskError(Exception):
        def __init__(self, cause):
            super().__init__("task failed")
            self.cause = cause

    argv = ["-m", f"hydra.sweep.dir={tmp_path}"]
    for exc in (WorkerCrashedError("The worker died unexpectedly"),
                RayTaskError(WorkerCrashedError("died"))):
        line = explain(exc, argv)
        assert line.startswith("a sweep job's worker died (killed, e.g. out of memory, or "
                               "crashed): "), line
        assert f"; no run in {tmp_path} has finished; " in line  # Ray: the others go on
        assert "cancelled" not in line
    assert explain(RayTaskError(ValueError("x")), argv) is None  # a job's own error: not this


def test_a_submitit_local_key_typo_lists_the_valid_keys(monkeypatch, capsys, tmp_path):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    code, _, err = run_app(monkeypatch, capsys, tmp_path, "-m", SMALL,
                           "hydra/launcher=submitit_local", "hydra.launcher.timeout_mn=2")
    assert code == 2
    line = one_error_line(err)
    assert line.startswith("wrpsim: error: hydra.launcher.timeout_mn: unknown key; valid keys "
                           "under hydra.launcher: ") and "timeout_min" in line, line
    assert line.endswith("; did you mean 'timeout_min'?")


def test_multirun_with_cfg_is_one_line_that_says_to_drop_the_m():
    """`-m … --cfg hydra -p hydra.launcher` was Hydra's ValueError traceback."""
    from wrpsim.hydra_errors import explain

    exc = ValueError("Only one of --run, --multirun, --cfg, --info and --shell_completion can "
                     "be specified")
    argv = ["-m", "hydra/launcher=ray", "--cfg", "hydra", "-p", "hydra.launcher"]
    assert explain(exc, argv) == (
        "-m and --cfg cannot be combined: Hydra takes one of -m/--multirun, -r/--run, -c/--cfg, "
        "-i/--info, -sc/--shell-completion; --cfg prints the config without running, so drop "
        "-m: python -m wrpsim hydra/launcher=ray --cfg hydra -p hydra.launcher")
    assert explain(ValueError("other"), argv) is None


def test_slurm_launcher_off_a_cluster_or_without_the_extra_is_one_line(monkeypatch, capsys,
                                                                       tmp_path):
    code, _, err = run_app(monkeypatch, capsys, tmp_path, "-m", SMALL, "hydra/launcher=slurm")
    assert code == 2
    assert "hydra/launcher" in one_error_line(err)
    if importlib.util.find_spec("hydra_plugins.hydra_submitit_launcher") is None:
        # without the extra, the missing extra is named first (README's install has no extras)
        assert "pip install -e '.[slurm]'" in one_error_line(err)
    elif shutil.which("srun") is None:  # named, with the local stand-in; no empty sweep folder
        assert one_error_line(err).startswith("wrpsim: error: hydra/launcher=slurm: Slurm's "
                                              "srun is not on PATH")
        assert "hydra/launcher=submitit_local" in err
        assert not (tmp_path / "sweep").exists()


def test_no_slurm_is_checked_only_for_a_sweep_on_a_slurm_launcher():
    from wrpsim.hydra_errors import no_slurm

    def none(_):
        return None

    assert no_slurm(["-m", "hydra/launcher=submitit_slurm"], none).startswith(
        "hydra/launcher=submitit_slurm: Slurm's srun is not on PATH")
    assert no_slurm(["-m", "hydra/launcher=slurm"], lambda _: "/usr/bin/srun") is None
    assert no_slurm(["hydra/launcher=slurm", "--cfg", "hydra"], none) is None
    assert no_slurm(["-m", "hydra/launcher=submitit_local"], none) is None


def test_launcher_whose_extra_is_missing_names_the_pip_extra():
    from wrpsim.hydra_errors import missing_extra

    extras = {"ray": ("wrpsim_no_such_module", "ray")}
    line = missing_extra(["-m", "hydra/launcher=ray", "seed=1"], extras)
    assert line.startswith("hydra/launcher=ray needs wrpsim_no_such_module, which is not "
                           "installed: pip install -e '.[ray]'")
    assert missing_extra(["hydra/launcher=basic"], extras) is None
    assert missing_extra(["hydra/launcher=ray"], {"ray": ("json", "ray")}) is None


def _trace_path(tmp_path, name: str, data: bytes):
    p = tmp_path / name
    p.write_bytes(data)
    return p


@pytest.mark.parametrize(("name", "data", "message"), [
    ("dir", None, r"is a directory; give the trace file itself"),
    ("missing.csv", None, r"error: workload\.source\.path: trace file '.*missing\.csv' not found$"),
    ("bin.csv", b"\x7fELF\x02\x01\x01\x00\xd0\xff\xfe" * 50, r"bin\.csv: not a text file"),
    ("bin.jsonl", b"\x00\xc3\x28\xff" * 50, r"bin\.jsonl: not a text file"),
], ids=["directory", "missing", "binary-csv", "binary-jsonl"])
def test_bad_trace_path_is_named(monkeypatch, capsys, tmp_path, name, data, message):
    path = tmp_path / name
    if name == "dir":
        path.mkdir()
    elif data is not None:
        path.write_bytes(data)
    extra = ["workload=tracelab-agent"] if name.endswith(".jsonl") else []
    code, _, err = run_app(monkeypatch, capsys, tmp_path, *extra,
                           f"workload.source.path={path}")
    assert code == 2
    assert re.search(message, one_error_line(err)), err


H = "arrival_s,prompt_tokens,output_tokens"


@pytest.mark.parametrize(("name", "text", "extra", "message"), [
    ("dup.csv", "arrival_s,prompt_tokens,prompt_tokens,output_tokens\n0,1,2,3\n", [],
     r"dup\.csv: line 1: column prompt_tokens appears more than once in the header"),
    ("big.csv", f"{H}\n0,99999999999999999999,3\n", [],
     r"big\.csv: line 2: field prompt_tokens \(prompt_tokens\): token count too large: "
     r"'99999999999999999999'; at most 9007199254740991"),
    ("big.jsonl", '{"arrival_s": 0, "prompt_tokens": 1e20, "output_tokens": 3}\n', [],
     r"big\.jsonl: line 1: field prompt_tokens .*token count too large"),
    ("img.csv", f"{H},images\n0,5,3,1\n1,5,3,1.5\n", [],
     r"img\.csv: line 3: field images \(images\): must be a whole number, got '1\.5'"),
    ("think.csv", f"{H},think_s\n5,5,3,1\n0,5,3,1\n2,5,3,-1\n", [],
     r"think\.csv: line 4: think_s must be NaN or a finite number >= 0, got -1\.0"),
    ("sim.csv", f"{H},semantic_similarity\n5,5,3,0.5\n0,5,3,2\n", [],
     r"sim\.csv: line 3: semantic_similarity must be NaN or a cosine similarity"),
    ("hm.csv", f'{H},hash_ids\n5,600,3,"[1, 2]"\n0,600,3,"[1]"\n',
     ["+workload.source.hash_block_tokens=512"],
     r"hm\.csv: line 3: hash_ids has 1 ids but prompt_tokens 600 spans"),
    ("hx.csv", f'{H},hash_ids\n0,600,3,"1; 2"\n', ["+workload.source.hash_block_tokens=512"],
     r"hx\.csv: line 2: field hash_ids \(hash_ids\): expected a list of signed 64-bit integers"),
    ("hb.csv", f'{H},hash_ids\n0,600,3,"[1, 2]"\n', [],
     r"hb\.csv: column hash_ids \(hash_ids\) found: give \+\+workload\.source\.hash_block_tokens"),
    ("oc.jsonl", '{"arrival_s": 0, "prompt_tokens": 5, "output_tokens": 3, '
                 '"outcomes": {"llama3.1-70b": 2}}\n', [],
     r"oc\.jsonl: line 1: field outcomes \(outcomes\): expected an object \{model name: "
     r"score in \[0, 1\]\}"),
], ids=["dup-header", "huge-csv", "huge-jsonl", "images-fraction", "think-negative",
        "similarity-range", "hash-count", "hash-not-json", "hash-no-block", "outcome-range"])
def test_bad_trace_content_is_one_line_with_the_file_line(monkeypatch, capsys, tmp_path, name,
                                                          text, extra, message):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    code, _, err = run_app(monkeypatch, capsys, tmp_path, "workload.source.kind=generic",
                           f"workload.source.path={path}", *extra)
    assert code == 2
    assert re.search(message, one_error_line(err)), err


def test_a_generic_file_under_the_azure_default_is_told_to_say_generic(monkeypatch, capsys,
                                                                      tmp_path):
    """A file with wrpsim's own column names read as the default kind (azure): mapping its
    columns one by one, as the generic hint said, then failed on Azure's timestamp format."""
    path = tmp_path / "ok.csv"
    path.write_text(f"{H}\n0,100,10\n1,200,20\n")
    code, _, err = run_app(monkeypatch, capsys, tmp_path, f"workload.source.path={path}")
    assert code == 2
    assert one_error_line(err).endswith(
        "its columns are wrpsim's own trace fields ('arrival_s', 'prompt_tokens', "
        "'output_tokens'): read it with workload.source.kind=generic (arrivals in seconds; "
        "workload.source.time_unit for ms / us)")
    code, _, err = run_app(monkeypatch, capsys, tmp_path, f"workload.source.path={path}",
                           "workload.source.kind=generic")
    assert code == 0, err


def test_fleet_larger_than_the_trace_runs_with_one_warning(monkeypatch, capsys, tmp_path):
    code, _, err = run_app(monkeypatch, capsys, tmp_path, SMALL, "pool.pools.h100.count=11",
                           "pool.pools.h100.tp=1", "pool.pools.h100.model=llama3.1-8b")
    assert code == 0, err
    warns = [ln for ln in err.splitlines() if ln.startswith("wrpsim: warning:")]
    assert warns == ["wrpsim: warning: the fleet has 11 instances (11 GPUs) for 10 requests: "
                     "most instances stay idle, and cost and energy count every one of them "
                     "(python -m wrpsim.plan finds the smallest fleet that meets the SLO)"]


def test_a_pool_whose_kv_cannot_hold_its_context_runs_with_one_warning(monkeypatch, capsys,
                                                                     tmp_path):
    """Qwen3-32B on one H100 at gpu_mem_util 0.9 (vLLM's default before 0.92): by wrpsim's
    estimate 61 GiB of weights leave KV for 35,632 tokens, fewer than its 40,960-token
    context; vLLM refuses to start a server whose own estimate falls short so. wrpsim says
    so once and runs it (longer requests dropped). With the context lowered to what fits, no
    warning; a Mamba hybrid is checked with one sequence's state, as vLLM checks it, not
    max_seqs of them (its one warning is that max_seqs 330 exceeds the 275 sequences whose
    state the cache holds)."""
    args = (SMALL, "pool.pools.h100.tp=1", "pool.pools.h100.model=qwen3-32b",
            "pool.pools.h100.count=1", "+pool.pools.h100.scheduler.gpu_mem_util=0.9")
    code, _, err = run_app(monkeypatch, capsys, tmp_path, *args)
    assert code == 0, err
    warns = [ln for ln in err.splitlines() if ln.startswith("wrpsim: warning:")]
    assert warns == ["wrpsim: warning: pool.pools.h100: by wrpsim's memory estimate "
                     "(scheduler.gpu_mem_util x GPU memory - weights - the activation reserve, "
                     "scheduler.reserve_gib) "
                     "its KV cache holds 35,632 tokens for one sequence, fewer than its "
                     "max_context (40,960); vLLM refuses to start a server whose own estimate "
                     "falls short so, and wrpsim drops the longer requests "
                     "(exceeds_kv_capacity). Set pool.pools.h100.max_context to at most 35,632 "
                     "(with a '+' where the pool's file leaves it out), or give the KV room "
                     "(scheduler.gpu_mem_util / reserve_gib, tp, kv_dtype)"]
    (tmp_path / "fits").mkdir()
    code, _, err = run_app(monkeypatch, capsys, tmp_path / "fits", *args,
                           "+pool.pools.h100.max_context=30000")
    assert code == 0 and "wrpsim: warning:" not in err, err
    (tmp_path / "hybrid").mkdir()
    code, _, err = run_app(monkeypatch, capsys, tmp_path / "hybrid", SMALL,
                           "pool.pools.h100.model=nemotron-nano-9b-v2", "pool.pools.h100.tp=1",
                           "pool.pools.h100.gpu=l40s-48gb", "pool.pools.h100.count=1",
                           "pool.pools.h100.scheduler.max_seqs=330")
    warns = [ln for ln in err.splitlines() if ln.startswith("wrpsim: warning:")]
    assert code == 0 and len(warns) == 1, err
    assert warns[0].startswith("wrpsim: warning: pool.pools.h100.scheduler.max_seqs (330) "
                               "exceeds the 275 sequences whose Mamba state"), err


@pytest.mark.parametrize(("args", "warns"), [
    (["network=nic", "network.kind=none"], "400"), (["network=none", "+network.nic_gbps=100"],
                                                     "100"),
    (["network=none"], None), (["network=nic"], None),
    (["network=nic", "network.kind=none", "network.nic_gbps=null"], None)])
def test_a_nic_bandwidth_under_network_kind_none_runs_with_one_warning(monkeypatch, capsys,
                                                                       tmp_path, args, warns):
    """`network=nic network.kind=none` ran silently without the nic group's nic_gbps (a
    walkthrough): kind none moves KV in no time. A NIC bandwidth set where it is unread says
    so in one line; none set (network=none), or one that is read (network=nic), says nothing."""
    code, _, err = run_app(monkeypatch, capsys, tmp_path, SMALL, *args)
    assert code == 0, err
    got = [ln for ln in err.splitlines() if ln.startswith("wrpsim: warning:")]
    assert got == ([
        f"wrpsim: warning: network.nic_gbps={warns} changes nothing with network.kind=none (KV "
        f"transfers take no time); for NICs of that bandwidth choose network=nic without "
        f"network.kind=none"] if warns else []), err


@pytest.mark.parametrize(("workload", "warns"), [("azure-conv-2023", True),
                                               ("chat-sessions", False)])
def test_session_affinity_without_session_ids_runs_with_one_warning(monkeypatch, capsys,
                                                                    tmp_path, workload, warns):
    """session-affinity on a trace without session_id ran silently as least-outstanding (as
    prefix-aware on a trace without hash ids warns)."""
    code, _, err = run_app(monkeypatch, capsys, tmp_path, SMALL, "router=session-affinity",
                           f"workload={workload}")
    assert code == 0, err
    warns_got = [ln for ln in err.splitlines() if ln.startswith("wrpsim: warning:")]
    assert warns_got == ([
        "wrpsim: warning: router=session-affinity on a workload without session ids "
        "(session_id): there is no session to keep on one instance, so it routes every request "
        "to the least outstanding one (use a trace that has them, e.g. workload=chat-sessions)"]
        if warns else []), err


def test_the_pure_core_warns_instead_of_printing(tmp_path, capsys):
    from tests.conftest import constant_cfg, make_trace
    from wrpsim.sim import run

    trace = make_trace([0.0, 0.5, 1.0], [10, 10, 10], [5, 5, 5])
    with pytest.warns(WrpsimWarning, match=r"the fleet has 4 instances \(4 GPUs\) for 3 "):
        run(constant_cfg(count=4), tmp_path, trace=trace)
    assert capsys.readouterr().err == ""


def test_plan_rejects_a_fractional_seed(monkeypatch, capsys, tmp_path):
    code, _, err = run_app(monkeypatch, capsys, tmp_path, SMALL, "seed=2.5", module="wrpsim.plan")
    assert code == 2
    assert one_error_line(err) == "wrpsim: error: seed must be an integer >= 0, got 2.5"


@pytest.mark.parametrize(("arg", "message"), [
    ("slo=2", "slo must be a mapping (conf/config.yaml), got 2"),
    ("sim=1", "sim must be a mapping (conf/config.yaml), got 1"),
    ("plan=1", "plan must be a mapping (conf/plan.yaml), got 1"),
    ("plan.candidates.h100.scheduler=3", "plan.candidates.h100.scheduler must be a mapping of "
                                         "scheduler settings (pools/README.md), got 3"),
    ("plan.candidates.h100.gpu=[h100-80gb]", "plan.candidates.h100.gpu must be a name, got "
                                             "['h100-80gb']; a plan compares choices as "
                                             "candidates: one entry under plan.candidates for "
                                             "each"),
])
def test_plan_sections_and_names_of_the_wrong_type_are_one_line(monkeypatch, capsys, tmp_path,
                                                                 arg, message):
    """A scalar where the plan's section belongs, a list where one name belongs (tracebacks
    before)."""
    code, _, err = run_app(monkeypatch, capsys, tmp_path, SMALL, arg, module="wrpsim.plan")
    assert code == 2
    assert one_error_line(err) == f"wrpsim: error: {message}"


def test_plan_has_no_pool_group_and_says_so(monkeypatch, capsys, tmp_path):
    code, _, err = run_app(monkeypatch, capsys, tmp_path, "pool=h100-llama70b",
                           module="wrpsim.plan")
    assert code == 2
    assert one_error_line(err) == ("wrpsim: error: pool: not a config group of this command "
                                   "(--help lists its groups; a plan's pools are "
                                   "plan.candidates, pool templates without count)")


@pytest.mark.parametrize(("module", "arg", "hint"), [
    ("wrpsim.plan", "failures=random", ""),
    ("wrpsim", "experiment=smoke", "; an optional one is added as +experiment=NAME"),
])
def test_a_group_the_command_lacks_is_hinted_with_a_plus_only_where_that_works(
        monkeypatch, capsys, tmp_path, module, arg, hint):
    """`python -m wrpsim.plan failures=random` said "an optional one is added as
    +failures=NAME", and `+failures=random` then failed as an unknown top-level key (so did
    `+pool=` on a plan; a user walk-through): the '+' hint is kept for the optional group,
    experiment, alone."""
    code, _, err = run_app(monkeypatch, capsys, tmp_path, SMALL, arg, module=module)
    assert code == 2
    group = arg.split("=")[0]
    assert one_error_line(err) == (f"wrpsim: error: {group}: not a config group of this "
                                   f"command (--help lists its groups{hint})")


def test_plan_candidates_cleared_with_an_empty_mapping_is_refused(monkeypatch, capsys,
                                                                   tmp_path):
    """`plan.candidates={}` kept all three candidates (a Hydra merge) and planned over them;
    it is one line now, and the removal it suggests runs."""
    code, _, err = run_app(monkeypatch, capsys, tmp_path, SMALL, "plan.candidates={}",
                           module="wrpsim.plan")
    assert code == 2
    assert one_error_line(err) == (
        "wrpsim: error: plan.candidates={} changes nothing: Hydra merges a mapping given on "
        "the command line into the config's, so plan.candidates keeps its keys (a100, h100, "
        "h200); remove an entry with ~plan.candidates.NAME (e.g. ~plan.candidates.a100)")


def test_plan_names_a_candidate_whose_tp_spans_servers(monkeypatch, capsys, tmp_path):
    code, _, err = run_app(monkeypatch, capsys, tmp_path, SMALL, "plan.candidates.a100.tp=16",
                           module="wrpsim.plan")
    assert code == 2
    assert one_error_line(err).startswith("wrpsim: error: plan.candidates.a100.tp=16 spans more "
                                          "than one 8-GPU server")


@pytest.mark.parametrize("flag, key", [("", "hydra.run.dir"), ("-m", "hydra.sweep.dir")])
def test_output_folder_that_cannot_be_made_is_one_line(monkeypatch, capsys, tmp_path, flag, key):
    """Hydra creates the run's (or sweep's) folder; one under a file fails there with one line
    naming both keys, not Hydra's traceback."""
    import sys

    from wrpsim.__main__ import main

    (tmp_path / "f").write_text("x")
    bad = tmp_path / "f" / "out"
    monkeypatch.setattr(sys, "argv", ["wrpsim", *filter(None, [flag]), f"{key}={bad}", SMALL])
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as e:
        main()
    line = one_error_line(capsys.readouterr().err)
    assert e.value.code == 2
    assert line.startswith(f"wrpsim: error: hydra.run.dir / hydra.sweep.dir: cannot create the "
                           f"output directory '{bad}': ")


@pytest.mark.parametrize("verb, args", [
    ("wrpsim.validate", ["sets=[llmservingsim]"]),
    ("wrpsim.calibrate", ["engine=x", "benchmarks=docs/examples/calibrate_benchmarks.csv"]),
    ("wrpsim.report", ["sweep_dir=."]),
])
def test_verb_out_dir_that_cannot_be_made_is_one_line(monkeypatch, capsys, tmp_path, verb, args):
    """The verbs with an `out_dir` create it before any work and name the key when they cannot
    (validate used to replay every case first and then fail with a traceback)."""
    from importlib import import_module
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    (tmp_path / "f").write_text("x")
    bad = tmp_path / "f" / "out"
    monkeypatch.chdir(root)
    code = import_module(f"{verb}.__main__").main([*args, f"out_dir={bad}"])
    line = one_error_line(capsys.readouterr().err)
    assert code == 2
    assert line.startswith(f"wrpsim: error: out_dir: cannot create the folder '{bad}': ")


def test_a_name_missing_its_suffix_is_suggested():
    """`gpu=h200` listed the choices but suggested nothing (difflib finds 'h200-141gb' too far):
    a name that is one valid name's leading part up to a '-' is suggested."""
    from wrpsim.errors import did_you_mean, unknown_choice

    assert did_you_mean("h200", ["h100-80gb", "h200-141gb", "b200-180gb"]) == \
        "; did you mean 'h200-141gb'?"
    assert str(unknown_choice("gpu", "h200", ["h100-80gb", "h200-141gb"])).endswith(
        "did you mean 'h200-141gb'?")
    assert did_you_mean("zzz", ["h100-80gb"]) == ""


def test_a_name_in_the_wrong_case_is_suggested_in_the_right_one():
    from wrpsim.errors import closest, unknown_choice

    assert closest("FP8", ["bf16", "fp8", "fp8_block"]) == "fp8"
    assert closest("H200", ["h100-80gb", "h200-141gb"]) == "h200-141gb"
    assert str(unknown_choice("precision", "BF16", ["bf16", "fp8"])).endswith(
        "; did you mean 'bf16'?")


def test_a_plan_candidate_whose_kv_cannot_hold_its_context_warns_under_its_name():
    """The planner mutes warnings of the fleets it simulates; a candidate whose KV cannot hold
    its context is said once, when the candidate is checked, under its own key."""
    from wrpsim.errors import WrpsimWarning
    from wrpsim.plan.config import expand_candidate

    with pytest.warns(WrpsimWarning, match=r"^plan\.candidates\.a100: by wrpsim's memory "
                      r"estimate .* holds 40,240 tokens for one sequence, fewer than its "
                      r"max_context \(131,072\).* Set plan\.candidates\.a100\.max_context to "
                      r"at most 40,240"):
        expand_candidate("a100", {"gpu": "a100-80gb", "model": "llama3.1-70b", "tp": 2})


def test_an_unknown_engine_says_where_engines_of_ones_own_are_found(tmp_path):
    """A name no engine has and none nearly spells: perhaps an engine of the user's own, not
    found because WRPSIM_CATALOG is unset or names another folder; both are said."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    env = {k: v for k, v in os.environ.items() if k != "WRPSIM_CATALOG"}
    for extra, said in (({}, "(WRPSIM_CATALOG is not set)"),
                        ({"WRPSIM_CATALOG": str(tmp_path)},
                         f"(WRPSIM_CATALOG={tmp_path} has none named 'mine')")):
        r = subprocess.run([sys.executable, "-m", "wrpsim", f"hydra.run.dir={tmp_path}/r",
                            "pool.pools.h100.engine=mine"], cwd=root, capture_output=True,
                           text=True, timeout=300, env={**env, **extra})
        assert r.returncode == 2
        line = r.stderr.strip().splitlines()[-1]
        assert line.startswith("wrpsim: error: pool.pools.h100.engine: unknown value 'mine'; "
                               "valid choices: ")
        assert line.endswith("; engines of your own (python -m wrpsim.calibrate) are found in "
                             f"$WRPSIM_CATALOG/engines {said}")


def test_a_vllm_name_in_a_file_is_answered_with_the_full_path_and_its_note():
    """A pool file's key spelled as vLLM's engine argument gets the same answer as the
    override: the full path that holds it, and what the key means where that differs."""
    from wrpsim.errors import ConfigError, check_keys

    with pytest.raises(ConfigError) as e:
        check_keys({"data_parallel_size": 2}, ["gpu", "tp", "attn_dp"], "pool.pools.h100")
    assert str(e.value).endswith(
        "vLLM's data_parallel_size is pool.pools.h100.attn_dp here with expert-parallel MoE "
        "(data-parallel attention); replicas of a dense model are the pool's count")
    with pytest.raises(ConfigError) as e:  # (after a file name: the key path alone)
        check_keys({"max_num_seqs": 8}, ["max_seqs"], "pools/mine.yaml: scheduler")
    assert str(e.value).endswith("vLLM's max_num_seqs is scheduler.max_seqs here")


OUT_H = "prompt_id,benchmark,category,prompt_chars,correct_small,correct_large"
ROUTELLM = ("workload=routellm-mmlu-gsm8k", "pool=two-model-mixtral-gpt4like")


@pytest.mark.parametrize(("name", "text", "message"), [
    ("yes.csv", f"{OUT_H}\n0,mmlu,x,100,yes,True\n",
     r"yes\.csv\): line 2: correct_small must be a number in \[0, 1\] \(or true / false\), "
     r"got 'yes'$"),
    ("two.csv", f"{OUT_H}\n0,mmlu,x,100,1,0\n1,mmlu,x,100,2,2\n",
     r"two\.csv\): line 3: correct_small must be a number in \[0, 1\] .*got 2$"),
    ("chars.csv", f"{OUT_H}\n0,mmlu,x,-5,1,0\n", r"line 2: prompt_chars must be a number >= 0"),
    ("empty.csv", f"{OUT_H}\n", r"empty\.csv\): the file holds no rows$"),
], ids=["text-score", "score-2", "negative-chars", "no-rows"])
def test_a_bad_outcomes_file_is_one_line_naming_its_line(monkeypatch, capsys, tmp_path, name,
                                                         text, message):
    """Outcome scores were read with float(): text was a traceback, a score of 2 a quality of
    2.0, a header without rows a ZeroDivisionError."""
    path = tmp_path / name
    path.write_text(text)
    code, _, err = run_app(monkeypatch, capsys, tmp_path, SMALL, *ROUTELLM,
                           "router=routellm-threshold", f"workload.outcomes.path={path}")
    assert code == 2
    assert re.search(message, one_error_line(err)), err


@pytest.mark.parametrize(("name", "text", "message"), [
    ("level.yaml", "models:\n  llama3.1-8b: {prose: high}\n",
     r"level\.yaml: accuracy of llama3\.1-8b on prose must be a number in \[0, 1\], got 'high'$"),
    ("list.yaml", "- a\n- b\n", r"list\.yaml: an accuracy file must be a mapping with keys "
                                r"models, default, got a list$"),
    ("typo.yaml", "model:\n  llama3.1-8b: {prose: 0.5}\n",
     r"typo\.yaml: unknown key\(s\) \['model'\]; valid keys: models, default; did you mean "
     r"'models'\?$"),
    ("bad.yaml", "models: [a\n", r"bad\.yaml:2:1: invalid YAML"),
    ("text.csv", "category,llama3.1-8b\nprose,abc\n",
     r"text\.csv: accuracy of llama3\.1-8b on prose must be a number in \[0, 1\], got 'abc'$"),
], ids=["level-name", "top-list", "key-typo", "yaml-syntax", "csv-text"])
def test_a_bad_accuracy_file_is_one_line(monkeypatch, capsys, tmp_path, name, text, message):
    """Tracebacks (float('high'), a list's .get, YAML's scanner) or, for `model:`, a run that
    used no accuracy at all and said nothing."""
    path = tmp_path / name
    path.write_text(text)
    code, _, err = run_app(monkeypatch, capsys, tmp_path, SMALL, "workload=azure-conv-tasks",
                           "pool=mixed-a100-h100", f"workload.accuracy={path}")
    assert code == 2
    assert re.search(message, one_error_line(err)), err


def test_accuracy_numbers_yaml_reads_as_text_are_numbers(tmp_path):
    """'0.7' quoted and 5e-1 (text to PyYAML) are accuracies, as float() read them before the
    checks were added; a level name is not."""
    from wrpsim.workload.outcomes import read_accuracy

    path = tmp_path / "a.yaml"
    path.write_text("models:\n  m1: {code: '0.7', prose: 5e-1}\ndefault: {m1: '1'}\n")
    assert read_accuracy(path) == {"m1": {"code": 0.7, "prose": 0.5, "*": 1.0}}


def test_an_outcomes_line_is_the_files_even_after_its_split_is_taken(monkeypatch, capsys,
                                                                     tmp_path):
    """The line named is the file's, not the row's place among the split's rows."""
    path = tmp_path / "o.csv"
    path.write_text(f"{OUT_H},split\n0,mmlu,x,100,1,0,train\n1,mmlu,x,100,1,0,test\n"
                    f"2,mmlu,x,100,1,0,train\n3,mmlu,x,100,2,0,test\n")
    code, _, err = run_app(monkeypatch, capsys, tmp_path, SMALL, *ROUTELLM,
                           "router=routellm-threshold", f"workload.outcomes.path={path}",
                           "+workload.outcomes.split=test")
    assert code == 2
    assert re.search(r"o\.csv\): line 5: correct_small must be a number in \[0, 1\]",
                     one_error_line(err)), err


@pytest.mark.parametrize(("args", "message"), [
    (["-m", "pool.pools.h100.count=range(1,3,0)"],
     r"pool\.pools\.h100\.count=range\(1,3,0\): a sweep's range\(\) step must not be 0"),
    (["-m", "workload.rate_scale=interval(1,4)"],
     r"interval\(\.\.\.\) sweeps need an optimising sweeper; the basic sweeper takes a comma "
     r"list"),
    (["-m", "router=round-robin,"],
     r"bad override 'router=round-robin,': a sweep list has no empty item: drop the trailing "
     r"comma$"),
    ([*ROUTELLM, "router=cascade", "router.models=[gpt4-class,gpt4-class]"],
     r"router\.models: gpt4-class listed more than once"),
    ([*ROUTELLM, "router=routellm-threshold", "router.predictor.noise_sd=inf"],
     r"router\.predictor\.noise_sd must be a finite number >= 0, got inf$"),
    ([*ROUTELLM, "router=cascade", "router.predictor.skill=inf"],
     r"router\.predictor\.skill must be a finite number"),
    (["failures=scheduled", "+failures.pools=[nope]"],
     r"failures\.pools applies to random crashes only, which failures\.mtbf_s turns on"),
    (["failures=scheduled", "+failures.mttr_s=5"], r"failures\.mttr_s applies to random"),
    (["failures=random", "failures.mtbf_s=null", "failures.pools=[h100]",
      "+failures.events=[{pool: h100, instance: 0, at_s: 60, down_s: 30}]"],
     r"failures\.pools applies to random crashes only"),
], ids=["range-step-0", "interval", "trailing-comma", "cascade-twice", "noise-inf", "skill-inf",
        "pools-no-mtbf", "mttr-no-mtbf", "pools-random-off"])
def test_more_bad_settings_are_one_line(monkeypatch, capsys, tmp_path, args, message):
    """A traceback (a range step of 0), Hydra's raw sweeper text (interval), or a run that
    accepted nonsense: a cascade escalating to the model that just answered, an infinite
    predictor setting (NaN scores), random-crash keys without random crashes."""
    code, _, err = run_app(monkeypatch, capsys, tmp_path, SMALL, *args)
    assert code == 2
    assert re.search(message, one_error_line(err)), err


def test_scheduled_outages_on_the_random_option_with_its_defaults_run(monkeypatch, capsys,
                                                                     tmp_path):
    """docs/failures.md's schema as written: events, mtbf_s null and random.yaml's defaults
    (mttr_s 600, pools null) — random crashes off, scheduled outages on."""
    code, _, err = run_app(monkeypatch, capsys, tmp_path, SMALL, "failures=random",
                           "failures.mtbf_s=null",
                           "+failures.events=[{pool: h100, instance: 0, at_s: 1, down_s: 30}]")
    assert code == 0, err


def test_settings_that_would_do_nothing_are_said(monkeypatch, capsys, tmp_path):
    """A category misspelt in the cache's per-category settings or a rule file matched nothing
    in silence (a category merely absent from this workload is not said: those settings are
    written for many); collectives on a fabric with no group spanning servers put nothing on
    it."""
    import warnings

    def warned(*args):
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            code, _, err = run_app(monkeypatch, capsys, tmp_path, SMALL, *args)
        assert code == 0, err
        return [str(x.message) for x in w if isinstance(x.message, WrpsimWarning)] + [
            ln for ln in err.splitlines() if ln.startswith("wrpsim: warning:")]

    said = warned("workload=azure-conv-tasks", "pool=mixed-a100-h100", "router.cache.enabled=true",
                  "router.cache.hit_rate={default: 0.0, cod: 0.9, math_word_problems: 0.5}")
    assert any("router.cache.hit_rate names category no request of the workload has: cod; "
               "its categories: code, mixed, prose, rag; did you mean 'code'?" in s
               for s in said), said
    assert not any("math_word_problems" in s for s in said)
    rules = tmp_path / "r.yaml"
    from wrpsim.router.config import routers_dir
    rules.write_text((routers_dir() / "rules" / "semantic-default.yaml").read_text()
                     .replace("values: [code]", "values: [cod]"))
    said = warned("router=semantic-rules", f"router.rules={rules}", "pool=mixed-a100-h100",
                  "workload=semantic-router-sample")
    assert any("router.rules: signal 'code' values names category no request of the workload "
               "has: cod" in s for s in said), said
    assert not any("math_word_problems" in s for s in said)  # absent here, not a typo
    # power-of-d sampling at least every instance of a model is least-outstanding
    said = warned("router=power-of-d", "router.d=99")
    assert any("router.d=99 is at least the instances of any model (4): power-of-d then takes "
               "the least outstanding of them all" in s for s in said), said
    assert not any("router.d" in s for s in warned("router=power-of-d"))
    # prefix_reuse parameterises the synthetic ids only: a warning, as a sweep over
    # prefix_ids=null,synthetic keeps it set for both
    said = warned("workload.prefix_reuse={share: 0.9, tokens: 1024, prefixes: 1}")
    assert any("workload.prefix_reuse applies only with prefix_ids: synthetic (it sets the "
               "synthetic prefix model); prefix_ids is null, so it is not used" in s
               for s in said), said
    # a subject merely missing from a small sample is not a slip of a similar one
    said = warned("router=semantic-rules", "router.rules=rules/routellm-two-model.yaml",
                  *ROUTELLM, "workload.max_requests=100")
    assert not any("names category" in s for s in said), said
    said = warned("workload=closed-loop", "workload.source.concurrency=64",
                  "workload.source.num_requests=10")
    assert any("workload.source.num_requests (10) is below workload.source.concurrency (64): "
               "only 10 clients ever send, one request each (a burst of 10)" in s
               for s in said), said
    said = warned("network=fluid", "network.collectives=true")
    assert any("network.collectives=true: no pool's tp exceeds a server's 8 GPUs" in s
               for s in said), said


def test_the_pool_override_examples_of_pools_readme_run(monkeypatch, capsys, tmp_path):
    """pools/README.md's "Every field can be overridden" examples, on the default fleet they
    name: `pool.pools.h100.latency.layer_overhead_us=10` was given without its '+', and the
    default fleet's file has no latency key, so a user copying it got an error."""
    text = (Path(__file__).resolve().parents[1] / "pools" / "README.md").read_text()
    para = re.search(r"Every field can be overridden on the command line: (.*?)\n\n", text,
                     re.S).group(1)
    examples = re.findall(r"`([+~]*pool\.pools\.h100\.[^`]+)`", para)
    assert len(examples) >= 5, para
    for k, arg in enumerate(examples):
        (tmp_path / str(k)).mkdir()
        code, _, err = run_app(monkeypatch, capsys, tmp_path / str(k), SMALL, arg)
        assert code == 0, (arg, err)


@pytest.mark.parametrize("args", [["--foo"], ["--jobs", "2"],
                                  # a mapping the shell split at its space
                                  ["workload.model_mix={llama3.1-70b:", "-1}"]])
def test_an_unknown_option_is_one_line_not_hydras_usage_page(monkeypatch, capsys, tmp_path,
                                                             args):
    """`python -m wrpsim --foo` printed Hydra's eight-line usage and `__main__.py: error:
    unrecognized arguments`."""
    code, _, err = run_app(monkeypatch, capsys, tmp_path, SMALL, *args)
    assert code == 2
    line = one_error_line(err)
    flag = next(a for a in args if a.startswith("-"))
    assert line.startswith(f"wrpsim: error: unknown option {flag!r}; ")
    assert "arguments are key=value overrides" in line and "usage:" not in err


def test_hydras_own_flags_are_not_unknown_options():
    from wrpsim.app import unknown_flag

    assert unknown_flag(["-m", "seed=1,2", "--cfg", "job", "-cn", "config", "--info",
                         "defaults", "--cfg=job", "--resolve", "~pool.pools.decode"]) is None
    assert unknown_flag(["seed=1", "--jobs", "2"]) == "--jobs"
