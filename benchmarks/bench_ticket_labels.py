"""Trained on tickets vs trained on ground truth, both scored against the truth of another seed.

Not part of the test suite. Takes two simulated and ingested runs (``guardian simulate``
+ ``guardian ingest``) of the same scenario with different seeds and the operator export
of the first (``guardian simulate --export operator``):

1. features of the training run (every 15 min);
2. labels from its ground truth (:func:`guardian_lib.labels.build_labels`) and labels from
   the export's closed tickets through its ``labels.yaml``
   (:func:`guardian_lib.labels_tickets.build_ticket_labels`);
3. one model bundle fitted on each;
4. both evaluated on the test run against *its* ground truth.

Prints one JSON object: for each training, massive F1, macro-F1, risk_24h PR-AUC, the
prevalence and the lift (PR-AUC / prevalence), plus the ticket label report.

The tickets are read from the export's ``ordens_servico.csv`` with the export's own
mapping (local time → UTC), so the model is trained on the simulated run's warehouse and
the ticket labels; ``guardian ingest --source`` of the export gives the same tickets.

Usage::

    nice -n 10 .venv/bin/python benchmarks/bench_ticket_labels.py \\
        --train RUN_A --export EXPORT_A --test RUN_B [--imported W_A] [--cache DIR]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from guardian_lib.features import feature_frame
from guardian_lib.label_map import load_label_map
from guardian_lib.labels import build_labels
from guardian_lib.labels_tickets import build_ticket_labels
from guardian_lib.models.training import evaluate_bundle, fit_bundle, load_truth
from guardian_lib.warehouse import connect


def export_tickets(export: Path) -> dict[str, pd.DataFrame]:
    """Tickets, contacts and inventory of an operator export, in the warehouse's names."""
    from simulator.operator_vocab import ALARM_NAMES, TS_FORMAT, TZ

    def utc(s: pd.Series) -> pd.Series:
        t = pd.to_datetime(s, format=TS_FORMAT, errors="coerce")
        return t.dt.tz_localize(TZ).dt.tz_convert("UTC")

    t = pd.read_csv(export / "ordens_servico.csv", dtype=str, keep_default_na=False)
    tickets = pd.DataFrame(
        {
            "os_id": t["os"],
            "customer_id": t["codigo_cliente"].replace("", None),
            "onu_id": t["serial_onu"].replace("", None),
            "opened_at": utc(t["abertura"]),
            "closed_at": utc(t["fechamento"]),
            "closure_code": t["codigo_baixa"].replace("", None),
            "notes": t["obs_tecnico"].replace("", None),
        }
    )
    c = pd.read_csv(export / "atendimentos.csv", dtype=str)
    cust = pd.read_csv(export / "clientes.csv", dtype=str).rename(
        columns={"codigo_cliente": "customer_id", "serial_onu": "onu_id"}
    )
    onu_of = dict(zip(cust["customer_id"], cust["onu_id"], strict=True))
    contacts = pd.DataFrame({"ts": utc(c["data_hora"]), "onu_id": c["codigo_cliente"].map(onu_of)})
    onus = pd.read_csv(export / "inventario_onus.csv", dtype=str).rename(
        columns={"serial": "onu_id", "id_pon": "pon_id"}
    )
    a = pd.read_csv(export / "alarmes.csv", dtype=str)
    names = {v: k for k, v in ALARM_NAMES.items()}
    a = a[a["tipo_equipamento"] == "ONU"]
    events = pd.DataFrame(
        {"ts": utc(a["data_hora"]), "entity_id": a["equipamento"], "type": a["alarme"].map(names)}
    )
    return {"tickets": tickets, "contacts": contacts, "onus": onus, "customers": cust,
            "events": events}  # fmt: skip


def cached_features(run: Path, every_minutes: int, cache: Path | None) -> pd.DataFrame:
    """Features of a run, read from / written to ``cache`` when given (they take minutes)."""
    path = None if cache is None else cache / f"{run.name}_f{every_minutes}.parquet"
    if path is not None and path.exists():
        return pd.read_parquet(path)
    f = feature_frame(run, every_minutes=every_minutes)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        f.to_parquet(path)
    return f


def figures(m: dict) -> dict[str, float]:
    prev = m.get("risk_24h_prevalence", float("nan"))
    auc = m.get("risk_24h_pr_auc", float("nan"))
    return {
        "massive_f1": round(m["massive_f1"], 3),
        "macro_f1": round(m["macro_f1"], 3),
        "risk_24h_pr_auc": round(auc, 4),
        "risk_24h_prevalence": round(prev, 4),
        "risk_24h_lift": round(auc / prev, 2) if prev else float("nan"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", type=Path, required=True)
    ap.add_argument("--export", type=Path, required=True)
    ap.add_argument("--test", type=Path, required=True)
    ap.add_argument("--n-estimators", type=int, default=200)
    ap.add_argument("--every-minutes", type=int, default=15)
    ap.add_argument("--cache", type=Path, help="Folder to keep the feature frames in.")
    ap.add_argument(
        "--imported",
        type=Path,
        help="The export ingested with `guardian ingest --source` (a warehouse without the "
        "simulator's tables): the tickets model then trains on its features and tickets, "
        "the whole operator path.",
    )
    args = ap.parse_args()

    connect(args.train).close()  # a clear error if the run is not ingested
    features = cached_features(args.train, args.every_minutes, args.cache)
    truth_labels = build_labels(features, load_truth(args.train))
    inp = export_tickets(args.export)
    ticket_labels, report = build_ticket_labels(
        features, inp["tickets"], load_label_map(args.export / "labels.yaml"),
        contacts=inp["contacts"], onus=inp["onus"], customers=inp["customers"],
        events=inp["events"],
    )  # fmt: skip
    test_f = cached_features(args.test, args.every_minutes, args.cache)
    test_l = build_labels(test_f, load_truth(args.test))
    out: dict = {"ticket_report": report.to_dict() | {"examples": None}}
    trainings = [("ground_truth", features, truth_labels), ("tickets", features, ticket_labels)]
    if args.imported is not None:
        from guardian_lib.models.training import ticket_labelled_frame

        imp_f, imp_l, imp_report = ticket_labelled_frame(
            args.imported, args.export / "labels.yaml", args.every_minutes
        )
        out["imported_ticket_report"] = imp_report | {"examples": None}
        trainings.append(("tickets_imported", imp_f, imp_l))
    for name, feats, labels in trainings:
        bundle = fit_bundle(feats, labels, n_estimators=args.n_estimators)
        m = evaluate_bundle(bundle, test_f, test_l)
        out[name] = figures(m)
        out[f"{name}_train_rows_with_cause"] = int(labels["symptomatic"].sum())
        out["rules_baseline"] = figures(
            m["baselines"] | {"risk_24h_prevalence": m.get("risk_24h_prevalence")}
        )
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
