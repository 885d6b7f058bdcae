"""The benchmark harness measures, compares and writes JSON (no timing asserts)."""
import json

from bench.harness import Case, measure, print_table, write_json


def test_measure_reports_medians_and_ratio(tmp_path, capsys):
    calls = {"ours": 0, "peer": 0}

    def ours():
        calls["ours"] += 1

    def peer():
        calls["peer"] += 1
        sum(range(200))

    r = measure(Case("toy", ours, peer), rounds=5, warmup=1)
    assert calls["ours"] > 5 and calls["peer"] > 5
    assert r["ours_s"] > 0 and r["peer_s"] > 0
    assert abs(r["ratio"] - r["peer_s"] / r["ours_s"]) < 1e-12
    print_table([r])
    assert "toy" in capsys.readouterr().out
    path = tmp_path / "out.json"
    write_json([r], str(path))
    data = json.loads(path.read_text())
    assert data["results"][0]["name"] == "toy" and "environment" in data


def test_case_without_peer_has_no_ratio():
    r = measure(Case("alone", lambda: None, None), rounds=3, warmup=0)
    assert "ratio" not in r and r["ours_s"] >= 0
