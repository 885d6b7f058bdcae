"""The README opens with the two set-up commands, and CI runs the second one verbatim."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _commands():
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```bash\n(.+?)\n```", text, flags=re.S)


def test_readme_opens_with_main_job_and_test_commands():
    first, second = _commands()[:2]
    assert "nnforge train mlp --data digits" in first and "pip install ." in first
    assert "pytest" in second and "[test" in second


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert _commands()[1] in ci.splitlines()
