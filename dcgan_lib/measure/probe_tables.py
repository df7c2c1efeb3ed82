"""The markdown and JSON records of Tables 1 and 2 (Paper §5.1-5.2): the paper's rows beside ours.

The paper's numbers (`paper_table1`, `paper_table2`) are typed once, here; `write_table` writes a table's
record and the markdown beside it, which `table_markdown` renders from the record, never typed.
dcgan_lib.measure.probes' write_table1, write_table2 and write_authors_table call it with each protocol's rows.
"""
from __future__ import annotations

from pathlib import Path

from dcgan_lib.measure.probe_data import ProbeData
from dcgan_lib.records import results


def paper_table1() -> list[dict]:
    """Table 1 of the paper: CIFAR-10 accuracy and max # feature units (Paper §5.1)."""
    rows = [("kmeans_1layer", "1 layer K-means", 0.806, 4800),
            ("kmeans_3layer", "3 layer K-means, learned RF", 0.820, 3200),
            ("kmeans_view_invariant", "View invariant K-means", 0.819, 6400),
            ("exemplar_cnn", "Exemplar CNN", 0.843, 1024), ("dcgan", "DCGAN (ours) + L2-SVM", 0.828, 512)]
    return [{"key": k, "model": m, "value": v, "max_units": u} for k, m, v, u in rows]


def paper_table2() -> list[dict]:
    """Table 2 of the paper: SVHN error with 1000 labels (Paper §5.2)."""
    rows = [("knn", "KNN", 0.7793), ("tsvm", "TSVM", 0.6655), ("m1_knn", "M1+KNN", 0.6563),
            ("m1_tsvm", "M1+TSVM", 0.5433), ("m1_m2", "M1+M2", 0.3602), ("swwae", "SWWAE without dropout", 0.2783),
            ("swwae_dropout", "SWWAE with dropout", 0.2356), ("dcgan", "DCGAN (ours) + L2-SVM", 0.2248),
            ("supervised_cnn", "Supervised CNN with the same architecture", 0.2887)]
    return [{"key": k, "model": m, "value": v, "note": "validation" if k == "supervised_cnn" else ""}
            for k, m, v in rows]


def _pct(value: float | None, ci: float | None = None) -> str:
    if value is None:
        return "-"
    return f"{100 * value:.2f}%" + (f" +- {100 * ci:.2f}" if ci is not None else "")


def table_markdown(record: dict) -> str:
    """The paper's rows and ours side by side, as a markdown table (from a record, never typed)."""
    m = record["metrics"]
    ours = m["rows"]
    lines = [f"**{record['name']}**", "",
             f"Ours: profile `{record['profile']}`, {m['description']}.", "",
             f"| model | paper {m['metric']} | our {m['metric']} | our model, notes |", "|---|---|---|---|"]
    matched = set()
    for prow in record["paper"]["table"]:
        mine = [r for r in ours if r.get("paper_key") == prow["key"]]
        matched.update(id(r) for r in mine)
        paper = _pct(prow["value"]) + (f" ({prow['note']})" if prow.get("note") else "")
        if not mine:
            lines.append(f"| {prow['model']} | {paper} | not run | |")
        for r in mine:
            lines.append(f"| {prow['model']} | {paper} | {_pct(r['value'], r.get('ci95'))} | "
                         f"{r['model']}; {r.get('note', '')} |")
    for r in ours:
        if id(r) not in matched:
            lines.append(f"| (extra) {r['model']} | - | {_pct(r['value'], r.get('ci95'))} | {r.get('note', '')} |")
    fits = [(r["model"], r["final_fit"]) for r in ours if r.get("final_fit")]
    if fits:  # the fits that report the rows' numbers: did each meet its solver's stopping criterion?
        lines += ["", "Final L2-SVM fits: " + "; ".join(
            f"{model}: {'converged' if f['converged'] else 'NOT converged'} ({f['criterion']}, tolerance "
            f"{f['tolerance']:g})" for model, f in fits) + "."]
    claims = m.get("claims") or {}
    if claims:
        lines += ["", "Paired claims (rows measured on the same test images; one-sided):", ""]
        lines += [f"- {c['text']}" for c in claims.values()]
    lines += ["", f"Data: {record['data'].get('dataset')} from {record['data'].get('source')} "
              f"({record['data'].get('archive')}, sha256 {str(record['data'].get('sha256'))[:12]}...). "
              f"Commit {record['commit']}, device {record['device']}, seed {record['seed']}, "
              f"wall {record['wall_s']} s.", ""]
    return "\n".join(lines)


def write_table(stem: str, *, name: str, profile: str, metric: str, rows: list[dict], paper: list[dict],
                pdata: ProbeData, seed: int, wall_s: float, device=None, **extra) -> Path:
    """Write the JSON record and the markdown table beside it (figures/ or runs/smoke/figures)."""
    paper_by_key = {p["key"]: p["value"] for p in paper}
    matched = [r["paper_key"] for r in rows if r.get("paper_key") in paper_by_key]
    # headline numbers under the same key on both sides, e.g. dcgan_accuracy: ours and the paper's
    metrics = {**{f"{k}_{metric}": r["value"] for r in rows for k in matched if r.get("paper_key") == k},
               "metric": metric, "protocol": pdata.protocol, "description": pdata.description, "rows": rows, **extra}
    paper_side = {**{f"{k}_{metric}": paper_by_key[k] for k in matched}, "table": paper}
    path = results.write_record(stem, name=name, profile=profile, metrics=metrics, paper=paper_side,
                                data=pdata.data, seed=seed, wall_s=wall_s, device=device)
    path.with_suffix(".md").write_text(table_markdown(results.read_record(path)))
    return path
