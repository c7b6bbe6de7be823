"""The RouteLLM two-model study: cost–quality points, the random-mix line, AIQ and a plot.

Usage: `python routers/studies/routellm_curve.py [--out DIR] [--html FILE] [--quick]`

Replays the `routellm-mmlu-gsm8k` workload (15,361 MMLU + GSM8K prompts with the real
correctness of Mixtral-8x7B and GPT-4-1106) on the `two-model-mixtral-gpt4like` fleet with:
the two single models alone, random mixes of both, the threshold router swept over its target
strong share and the utility router swept over λ — each with the category-only predictor and
with per-prompt predictors of skill 0.5 and 1 — plus the cascade at three verifier qualities
and the three bandits (their catalog settings). Prints one JSON object (points, AIQ per
router) and writes `routers_cost_quality.json` and `routers_cost_quality.md` (the tables) into
`--out` (default docs/experiments) and the plot, self-contained plotly HTML, to `--html`
(default docs/routers_cost_quality.html) and, when a headless Chromium is on the PATH, a
1400 × 700 screenshot of it to `--png` (default docs/routers_cost_quality.png, the image
docs/routers.md shows). `--quick` replays the first 3,000 requests only.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

SHARES = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
LAMBDAS = (0.0, 0.005, 0.01, 0.02, 0.03, 0.05, 0.08, 0.12, 0.2, 0.4, 0.8, 1.6)
MIXES = (0.25, 0.5, 0.75)
PREDICTORS = {"category": {"skill": 0.0, "noise_sd": 0.0},
              "skill 0.5": {"skill": 0.5, "noise_sd": 1.0},
              "skill 1": {"skill": 1.0, "noise_sd": 1.0}}
VERIFIERS = ((0.8, 0.1), (0.95, 0.05), (1.0, 0.0))
BANDITS = ("epsilon-greedy", "ucb1", "thompson")
SMALL, LARGE = "mixtral-8x7b", "gpt4-class"
COSTS = {"token_cost_per_1k_requests_usd": "token-priced cost per 1,000 requests (USD)",
         "cost_per_1k_requests_usd": "busy-GPU cost per 1,000 requests (USD)"}


def runs() -> list[tuple[str, float, list[str]]]:
    """(series, knob, overrides) of every run of the study."""
    out = [("single", 0.0, [f"workload.model={SMALL}", "router=round-robin"]),
           ("single", 1.0, [f"workload.model={LARGE}", "router=round-robin"])]
    out += [("random-mix", s, [f"workload.model_mix={{{SMALL}: {1 - s}, {LARGE}: {s}}}",
                               "router=round-robin"]) for s in MIXES]
    for name, p in PREDICTORS.items():
        pred = [f"router.predictor.skill={p['skill']}",
                f"router.predictor.noise_sd={p['noise_sd']}"]
        out += [(f"threshold ({name})", s, ["router=routellm-threshold",
                                            f"router.strong_share={s}", *pred]) for s in SHARES]
        out += [(f"utility ({name})", lam, ["router=carrot-utility", f"router.lam={lam}", *pred])
                for lam in LAMBDAS]
    out += [("cascade", tpr, ["router=cascade", f"router.verifier.tpr={tpr}",
                              f"router.verifier.fpr={fpr}"]) for tpr, fpr in VERIFIERS]
    out += [(f"bandit {b}", i, [f"router=bandit-{b}"]) for i, b in enumerate(BANDITS)]
    return out


def compose_cfg(*overrides: str) -> dict:
    """The run config `python -m wrpsim <overrides>` would use, as a plain dict."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from wrpsim.app import register_catalogs
    from wrpsim.paths import catalog_dir

    register_catalogs()
    with initialize_config_dir(config_dir=str(catalog_dir("conf")), version_base="1.3"):
        return OmegaConf.to_container(compose("config", overrides=list(overrides)), resolve=True)


def one(args: tuple) -> dict:
    """Run one point; return its metrics."""
    series, knob, overrides, quick = args
    from wrpsim.metrics.quality import quality_summary
    from wrpsim.sim import Simulation

    base = ["workload=routellm-mmlu-gsm8k", "pool=two-model-mixtral-gpt4like"]
    if quick:
        base.append("workload.max_requests=3000")
    cfg = compose_cfg(*base, *overrides)
    sim = Simulation(cfg)
    req, inst, end = sim.run()
    q = quality_summary(req, inst, sim.trace, sim.fleet.specs, sim.pue, end)
    return {"series": series, "knob": knob, "quality": q["quality"],
            **{k: q[k] for k in COSTS}, "energy_per_request_j": q["energy_per_request_j"],
            "strong_share": q["model_share"].get(LARGE, 0.0)}


def plot(points: list[dict], lines: dict, path: Path) -> None:
    """Self-contained plotly HTML: one panel per cost axis, points and the random-mix line."""
    import plotly.graph_objects as go
    from plotly.colors import qualitative
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=len(COSTS), subplot_titles=list(COSTS.values()))
    palette, colors = qualitative.Dark24, {}
    for col, key in enumerate(COSTS, start=1):
        for s in sorted({p["series"] for p in points}):
            pts = sorted((p for p in points if p["series"] == s), key=lambda p: p[key])
            c = colors.setdefault(s, palette[len(colors) % len(palette)])
            fig.add_trace(go.Scatter(
                x=[p[key] for p in pts], y=[p["quality"] for p in pts], name=s, legendgroup=s,
                showlegend=col == 1, marker={"color": c},
                mode="lines+markers" if s.startswith(("threshold", "utility")) else "markers"),
                row=1, col=col)
        (c0, q0), (c1, q1) = lines[key]
        fig.add_trace(go.Scatter(x=[c0, c1], y=[q0, q1], name="random-mix line",
                                 legendgroup="line", showlegend=col == 1, mode="lines",
                                 line={"dash": "dash", "color": "grey"}), row=1, col=col)
        fig.update_xaxes(title_text=COSTS[key], row=1, col=col)
    fig.update_yaxes(title_text="quality (mean correctness)", row=1, col=1)
    fig.update_layout(title="RouteLLM outcomes (MMLU + GSM8K): Mixtral-8x7B vs GPT-4-class",
                      template="plotly_white", height=550, width=1200)
    fig.write_html(path, include_plotlyjs=True, full_html=True)


def screenshot(html: Path, png: Path) -> None:
    """A 1400 x 700 PNG of the HTML plot by headless Chromium, when one is on the PATH."""
    from wrpsim.io import screenshot as shot

    shot(html, png, 1400, 700)


def table(result: dict) -> str:
    """Markdown tables of the points and of AIQ per cost axis."""
    head = ("| series | knob | strong share | quality | token cost /1k | random mix at that "
            "cost | busy cost /1k | random mix at that cost | energy / request (kJ) |\n"
            "|---|---|---|---|---|---|---|---|---|\n")
    rows = []
    for p in result["points"]:
        rows.append(
            f"| {p['series']} | {p['knob']:g} | {p['strong_share']:.3f} | {p['quality']:.4f} | "
            f"{p['token_cost_per_1k_requests_usd']:.3f} | "
            f"{p['mix_token_cost_per_1k_requests_usd']:.4f} | "
            f"{p['cost_per_1k_requests_usd']:.3f} | {p['mix_cost_per_1k_requests_usd']:.4f} | "
            f"{p['energy_per_request_j'] / 1000:.2f} |")
    aiq_rows = ["| router | AIQ (token cost) | AIQ (busy cost) |", "|---|---|---|"]
    for s in result["aiq"]["token_cost_per_1k_requests_usd"]:
        a, b = (result["aiq"][k][s] for k in COSTS)
        aiq_rows.append(f"| {s} | {a:.4f} | {b:.4f} |")
    return head + "\n".join(rows) + "\n\n" + "\n".join(aiq_rows) + "\n"


def main() -> None:
    from multiprocessing import Pool

    from wrpsim.report.aiq import aiq, random_mix

    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="docs/experiments")
    ap.add_argument("--html", default="docs/routers_cost_quality.html")
    ap.add_argument("--png", default="docs/routers_cost_quality.png")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--replot", action="store_true", help="redraw the plot from --out's JSON")
    a = ap.parse_args()
    if a.replot:
        done = json.loads((Path(a.out) / "routers_cost_quality.json").read_text())
        plot(done["points"], done["lines"], Path(a.html))
        screenshot(Path(a.html), Path(a.png))
        return
    todo = [(*r, a.quick) for r in runs()]
    with Pool(a.jobs) as pool:
        points = pool.map(one, todo)
    single = sorted((p for p in points if p["series"] == "single"), key=lambda p: p["knob"])
    result: dict = {"single": {SMALL: single[0], LARGE: single[1]}, "points": points,
                    "aiq": {}, "lines": {}}
    for key in COSTS:
        line = ((single[0][key], single[0]["quality"]), (single[1][key], single[1]["quality"]))
        result["lines"][key] = line
        for p in points:
            p[f"mix_{key}"] = random_mix(*line, p[key])
        res = result["aiq"][key] = {}
        for s in sorted({p["series"] for p in points} - {"single"}):
            pts = [p for p in points if p["series"] in (s, "single")]
            res[s] = aiq([p[key] for p in pts], [p["quality"] for p in pts], line[0][0],
                         line[1][0])
        res["random-mix line"] = 0.5 * (line[0][1] + line[1][1])
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "routers_cost_quality.json").write_text(json.dumps(result, indent=1))
    (out / "routers_cost_quality.md").write_text(table(result))
    plot(points, result["lines"], Path(a.html))
    screenshot(Path(a.html), Path(a.png))
    print(json.dumps({"aiq": result["aiq"]}))


if __name__ == "__main__":
    main()
