"""mvctl.yaml fails closed: a typo (an unknown key, channel or model, a duplicate key, a YAML
alias) is an error with its line, never a gate quietly switched off."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from mvctl.channels.gates import evaluate
from mvctl.channels.promotion import promote, validate
from mvctl.check import check
from mvctl.common import yamlio
from mvctl.errors import OperationalError, PolicyError
from mvctl.formats import config
from mvctl.formats.rules import parse_rule
from tests.conftest import (
    Registry,
    RegistryFactory,
    Release,
    copy_registry,
    git,
    mvctl,
)

HEAD = "version: 1\nchannels: [production, staging, canary, shadow]\n"
# What every broken config below means to say: v0.2.0 (auc 0.85) may not replace v0.1.0.
GOOD = (
    HEAD + "models:\n  fraud:\n    gates:\n      production:\n        - {metric: auc, min: 0.90}\n"
)


@pytest.fixture(scope="module")
def template(registry_factory: RegistryFactory) -> Path:
    """fraud v0.1.0 (auc 0.91) in production, v0.2.0 (auc 0.85) registered; built once."""
    releases = (Release(weights=str(auc).encode(), auc=auc) for auc in (0.91, 0.85))
    return registry_factory(*releases, promotions=(("v0.1.0", "production"),))


@pytest.fixture
def reg(template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Registry:
    # Each copy publishes to its own remotes, never to the template's.
    registry = copy_registry(template, tmp_path, publish=False)
    monkeypatch.chdir(registry.root)
    return registry


def configure(reg: Registry, text: str) -> None:
    reg.write("mvctl.yaml", text)
    reg.git("commit", "-q", "-m", "Gates", "--", "mvctl.yaml")


def refused(reg: Registry, error: type[Exception], match: str) -> None:
    """promote v0.2.0 to production is refused and moves nothing."""
    before = reg.tags(), git(reg.origin, "tag", "--list")
    with pytest.raises(error, match=match):
        promote(reg.root, "fraud", "v0.2.0", "production")
    assert (reg.tags(), git(reg.origin, "tag", "--list")) == before


def test_the_intended_gate_refuses_the_promotion(reg: Registry) -> None:
    configure(reg, GOOD)
    refused(reg, PolicyError, "failed the production gates")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            GOOD.replace("    gates:", "    gate:"),
            r"^mvctl\.yaml:5: models\.fraud\.gate: unknown key \(did you mean 'gates'\?\)$",
        ),
        (
            GOOD.replace("      production:", "      prodution:"),
            r"^mvctl\.yaml:6: models\.fraud\.gates\.prodution: unknown channel"
            r".*\(did you mean 'production'\?\)$",
        ),
        (
            GOOD + "    monitors:\n      prodution:\n        - {metric: fpr, max: 0.1}\n",
            r"^mvctl\.yaml:9: models\.fraud\.monitors\.prodution: unknown channel",
        ),
        (
            GOOD
            + "        - {metric: auc, min: 0.80}\n      production:\n        - {env: python}\n",
            r"^mvctl\.yaml:9: duplicate key 'production' \(first on line 6\)$",
        ),
        (
            GOOD + "  fraud:\n    weights: models/model.bin\n",
            r"^mvctl\.yaml:8: duplicate key 'fraud' \(first on line 4\)$",
        ),
        (
            GOOD.replace("models:", "modles:"),
            r"^mvctl\.yaml:3: modles: unknown key \(did you mean 'models'\?\)$",
        ),
        (
            HEAD + "gates:\n  production:\n    - {metric: auc, min: 0.90}\n",
            r"^mvctl\.yaml:3: gates: unknown key",
        ),
        (
            GOOD.replace("{metric: auc, min: 0.90}", "{metric: auc, mni: 0.90}"),
            r"^mvctl\.yaml:7: models\.fraud\.gates\.production\[0\]\.mni: unknown key for a "
            r"metric rule \(did you mean 'min'\?\)$",
        ),
        (
            GOOD.replace("{metric: auc, min: 0.90}", "{metric: auc, min: '0.90'}"),
            r"^mvctl\.yaml:7: models\.fraud\.gates\.production\[0\]\.min: must be a number",
        ),
    ],
    ids=[
        "gate-for-gates",
        "misspelled-gate-channel",
        "misspelled-monitor-channel",
        "duplicate-channel",
        "duplicate-model",
        "modles",
        "top-level-gates",
        "misspelled-bound",
        "string-bound",
    ],
)
def test_a_typo_refuses_the_promotion_with_its_line(reg: Registry, text: str, message: str) -> None:
    configure(reg, text)
    refused(reg, OperationalError, message)


def test_a_misspelled_model_refuses_the_promotion(reg: Registry) -> None:
    configure(reg, GOOD.replace("  fraud:", "  frad:"))
    message = (
        "mvctl.yaml: models.frad has gates but no version of 'frad' is registered, "
        "and fraud has no entry (a typo?)"
    )
    refused(reg, OperationalError, f"^{re.escape(message)}$")
    with pytest.raises(OperationalError, match=r"models\.frad has gates"):
        validate(reg.root, "fraud", "v0.2.0", "production")
    assert "mvctl.yaml: models.frad has gates but no version of 'frad' is registered" in (
        check(reg.root).problems
    )
    # An entry of its own (even an empty one) says fraud has no gates on purpose.
    configure(reg, GOOD.replace("  fraud:", "  frad:") + "  fraud: {}\n")
    assert promote(reg.root, "fraud", "v0.2.0", "production").version == "v0.2.0"


def test_a_misspelled_package_fails_its_gate(reg: Registry) -> None:
    configure(reg, GOOD.replace("{metric: auc, min: 0.90}", "{package: scikit-lern, same: true}"))
    refused(
        reg,
        PolicyError,
        r"package scikit-lern is in neither the candidate's nor the holder's environment",
    )


def test_cli_exit_3_with_the_line(reg: Registry) -> None:
    configure(reg, GOOD.replace("    gates:", "    gate:"))
    before = reg.tags()
    proc = mvctl(reg.root, "promote", "fraud", "v0.2.0", "--to", "production")
    assert proc.returncode == 3
    assert "mvctl.yaml:5: models.fraud.gate: unknown key (did you mean 'gates'?)" in (
        proc.stdout + proc.stderr
    )
    assert reg.tags() == before
    assert not check(reg.root).ok


# The schema, on text alone.

FULL = """\
version: 1
channels: [production, staging, canary, shadow]
review: [production]
push: never
models:
  fraud:
    weights: models/fraud.pkl
    data: [data/train.csv]
    metrics: metrics.json
    params: params.yaml
    env_lock: requirements.lock
    profile: data/train.csv
    description: card fraud
    labels: [tabular, gbm]
    columns: {label: is_fraud, prediction: pred, sensitive: [region], positive: 1}
    gates:
      production:
        - {metric: auc, min: 0.90}
        - {metric: auc, max_drop: 0.01}
        - {metric: f1, min_gain: 0.02, relative: true}
        - {metric: latency_p95_ms, max: 50, required: true}
        - {env: python, same: minor}
        - {package: scikit-learn, version: 1.5.2}
        - {package: numpy, same: true}
        - {drift: psi, max: 0.25}
        - {bias: demographic_parity_difference, max: 0.10}
      staging: []
    monitors:
      production:
        - {drift: psi, max: 0.25, warn: 0.1}
        - {drift: ks, alpha: 0.05, correction: bonferroni}
        - {drift: chi2, alpha: 0.05, correction: fdr, columns: [region]}
        - {drift: dataset, max_share: 0.3, psi: 0.2}
        - {bias: demographic_parity_ratio, min: 0.8}
        - {bias: equalized_odds_difference, max: 0.10}
        - {metric: false_positive_rate, max: 0.05}
    review: [production, staging]
    retention: {keep_gold: 3, keep_recent: 5}
  churn:
  spam: {}
"""


def test_a_full_config_is_accepted() -> None:
    cfg = config.loads(FULL)
    assert cfg.push == "never"
    assert cfg.review == ("production",)
    fraud = cfg.model("fraud")
    assert fraud.review == ("production", "staging")
    assert len(fraud.gates("production")) == 9 and fraud.gates("staging") == []
    assert len(fraud.monitors("production")) == 7
    assert cfg.model("churn").review == ("production",)
    assert config.loads(HEAD).push == "auto"


def test_the_init_template_is_accepted() -> None:
    assert config.loads(config.TEMPLATE).models == {}
    # The commented example, uncommented, is valid too.
    example = config.TEMPLATE.replace("models: {}\n", "").replace("# models:", "models:")
    example = example.replace("\n#   ", "\n  ")
    assert config.loads(example).model("fraud").gates("production") == [
        parse_rule({"metric": "auc", "min": 0.90})
    ]


def line_error(text: str) -> str:
    with pytest.raises(OperationalError) as caught:
        config.loads(text)
    return caught.value.message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version: 1\nchanels: [production]\n", "mvctl.yaml:2: chanels: unknown key"),
        ("version: 2\n", "mvctl.yaml:1: version: must be 1"),
        ("version: true\n", "mvctl.yaml:1: version: must be 1"),
        ("push: sometimes\n", "mvctl.yaml:1: push: must be 'auto' or 'never'"),
        ("channels: [Prod]\n", "mvctl.yaml:1: channels: must be a list of names"),
        ("review: [prod]\n", "mvctl.yaml:1: review: unknown channel 'prod'"),
        ("models:\n  Bad: {}\n", "mvctl.yaml:2: models.Bad: invalid model name"),
        ("models:\n  m: []\n", "mvctl.yaml:2: models.m: must be a mapping"),
        ("models:\n  m:\n    weights: 3\n", "mvctl.yaml:3: models.m.weights: must be a path"),
        ("models:\n  m:\n    data: [1]\n", "mvctl.yaml:3: models.m.data: must be a path or"),
        ("models:\n  m:\n    wieghts: a\n", "(did you mean 'weights'?)"),
        ("models:\n  m:\n    review: [prod]\n", "models.m.review: unknown channel 'prod'"),
        ("models:\n  m:\n    columns: {lable: y}\n", "models.m.columns.lable: unknown key"),
        (
            "models:\n  m:\n    retention: {keep_gold: -1}\n",
            "models.m.retention.keep_gold: must be a whole number >= 0",
        ),
        ("models:\n  m:\n    gates: [a]\n", "mvctl.yaml:3: models.m.gates: must be a mapping"),
        ("models:\n  m:\n    gates:\n", "mvctl.yaml:3: models.m.gates: must be a mapping"),
        (
            "models:\n  m:\n    gates:\n      production: {metric: auc}\n",
            "mvctl.yaml:4: models.m.gates.production: must be a list of rules",
        ),
        (
            "models:\n  m:\n    gates:\n      production:\n        - auc > 0.9\n",
            "mvctl.yaml:5: models.m.gates.production[0]: a rule must be a mapping",
        ),
        (
            "models:\n  m:\n    gates:\n      production:\n        - {metrc: auc, min: 1}\n",
            "production[0]: a rule needs one of metric, env, package, drift, bias",
        ),
        (
            "models:\n  m:\n    gates:\n      production:\n        - {metric: a, drift: psi}\n",
            "production[0]: a rule has one kind, not metric and drift",
        ),
        (
            "models:\n  m:\n    gates:\n      production:\n        - {metric: a, min: true}\n",
            "production[0].min: must be a number",
        ),
        (
            "models:\n  m:\n    gates:\n      production:\n        - {env: pyton}\n",
            "production[0].env: must be 'python'",
        ),
        (
            "models:\n  m:\n    monitors:\n      production:\n        - {package: numpy}\n",
            "models.m.monitors.production[0]: a rule needs one of metric, drift, bias",
        ),
        (
            "models:\n  m:\n    monitors:\n      production:\n"
            "        - {metric: fpr, max_drop: 0.1}\n",
            "production[0].max_drop: unknown key for a metric rule",
        ),
        (
            "models:\n  m:\n    monitors:\n      production:\n        - {drift: pis}\n",
            "production[0].drift: must be 'psi', 'ks', 'chi2' or 'dataset'",
        ),
        (
            "models:\n  m:\n    monitors:\n      production:\n        - {bias: parity}\n",
            "production[0].bias: must be",
        ),
        (
            "channels: [production, qa]\nmodels:\n  m:\n    gates:\n      staging: []\n",
            "mvctl.yaml:5: models.m.gates.staging: unknown channel (channels: production, qa)",
        ),
    ],
)
def test_schema_errors_name_the_key_and_its_line(text: str, message: str) -> None:
    assert message in line_error(text)


def test_schema_errors_without_a_line_still_name_the_key() -> None:
    with pytest.raises(OperationalError, match=r"^mvctl\.yaml: models\.m\.gate: unknown key"):
        config.parse({"models": {"m": {"gate": {}}}})
    with pytest.raises(OperationalError, match=r"^mvctl\.yaml: must be a mapping"):
        config.parse(["a list"])


def test_duplicate_keys_and_aliases_are_refused(tmp_path: Path) -> None:
    with pytest.raises(
        OperationalError, match=r"^m\.yaml:3: duplicate key 'a' \(first on line 1\)"
    ):
        yamlio.loads("a: 1\nb: 2\na: 3\n", "m.yaml")
    with pytest.raises(OperationalError, match=r"^m\.yaml:2: duplicate key 'x'"):
        yamlio.loads("top:\n  {x: 1, x: 2}\n", "m.yaml")
    with pytest.raises(OperationalError, match=r"^m\.yaml:2: YAML aliases .* are not allowed"):
        yamlio.loads("a: &x [1, 2]\nb: *x\n", "m.yaml")
    bomb = "a: &a [x, x]\nb: &b [*a, *a]\nc: &c [*b, *b]\nd: [*c, *c]\n"
    with pytest.raises(OperationalError, match="aliases"):
        yamlio.loads(bomb, "bomb.yaml")
    with pytest.raises(OperationalError, match="aliases"):
        yamlio.loads("a: &a [*a]\n", "loop.yaml")
    with pytest.raises(OperationalError, match=r"^m\.yaml:2: YAML merge keys"):
        yamlio.loads("a: 1\n<<: {b: 2}\n", "m.yaml")
    path = tmp_path / "f.yaml"
    path.write_text("k: 1\nk: 2\n")
    with pytest.raises(OperationalError, match=f"^{path}:2: duplicate key 'k'"):
        yamlio.load_file(path)
    # What is not a duplicate or an alias still loads, as before.
    assert yamlio.loads("a: 1\nb: [1, {c: 2}]\n1: x\n'1': y\n") == {
        "a": 1,
        "b": [1, {"c": 2}],
        1: "x",
        "1": "y",
    }
    assert yamlio.loads("") is None
    with pytest.raises(OperationalError, match=r"mvctl\.yaml:4: duplicate key 'production'"):
        config.loads(HEAD + "production: 1\nproduction: 2\n")


def test_a_package_rule_on_a_package_neither_side_has_fails() -> None:
    def env(**packages: str) -> dict[str, Any]:
        return {"environment": {"packages": packages}}

    same = [{"package": "scikit-lern", "same": True}]
    [both] = evaluate(same, env(**{"scikit-learn": "1.5.2"}), env(**{"scikit-learn": "1.5.2"}))
    assert not both.ok
    assert both.detail == (
        "package scikit-lern is in neither the candidate's nor the holder's environment (a typo?)"
    )
    [first] = evaluate(same, env(), None)
    assert not first.ok and "not in the candidate's environment" in first.detail
    assert [r.ok for r in evaluate([{"package": "numpy", "same": True}], env(numpy="2"), None)] == [
        True
    ]
    assert [r.ok for r in evaluate([{"package": "x", "version": "1"}], env(), env())] == [False]
