"""IQ protocol (002 §4.1–§4.3, App. A.2): template, schema, validation errors naming the field."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml
from typer.testing import CliRunner, Result

from aimd.cli.main import app
from aimd.core.errors import SchemaError
from aimd.iq.protocol import RACI_ROLES, IQProtocol, dump_protocol, load_protocol, protocol_schema
from aimd.iq.template import protocol_template

runner = CliRunner()


def _cli(*args: str) -> Result:
    return runner.invoke(app, ["iq", *args])


def test_template_from_cli_validates_against_exported_schema(tmp_path: Path) -> None:
    proc = _cli("protocol-template")
    assert proc.exit_code == 0, proc.output
    data = yaml.safe_load(proc.output)
    jsonschema.validate(data, json.loads(_cli("protocol-schema").stdout))
    protocol = IQProtocol.model_validate(data)
    assert [s.id for s in protocol.install_steps] == list("abcdefgh")
    assert protocol.environment_minimum.cpu_cores <= protocol.environment_recommended.cpu_cores
    assert {h.key for h in protocol.hardening} >= {"not_root", "debug_off", "tls_on"}
    (tmp_path / "iq.yaml").write_text(proc.output)
    assert _cli("protocol-check", str(tmp_path / "iq.yaml")).exit_code == 0


def test_raci_follows_appendix_a2_with_one_accountable_role() -> None:
    rows = {r.activity: r.roles for r in protocol_template().raci}
    assert len(rows) == 9
    assert rows["feasibility analysis"]["user_project_manager"] == "A"
    assert rows["solution design"]["provider_install_engineer"] == "R"
    for roles in rows.values():
        assert set(roles) == set(RACI_ROLES) and list(roles.values()).count("A") == 1


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda d: d["install_steps"].pop(3), "install_steps"),
        (lambda d: d["version_manifest"].update(version="9.9.9"), "version_manifest"),
        (lambda d: d["raci"][0]["roles"].update(user_domain_expert="A"), "raci.0.roles"),
        (lambda d: d["stress"].update(levels=[4, 2]), "stress.levels"),
        (lambda d: d["scoring"]["weights"].update(luck=5), "scoring.weights"),
        (lambda d: d.update(unexpected=1), "unexpected"),
    ],
)
def test_broken_protocols_are_refused_naming_the_field(tmp_path: Path, edit, field: str) -> None:
    data = protocol_template().model_dump(mode="json")
    edit(data)
    path = tmp_path / "iq.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(SchemaError) as err:
        load_protocol(path)
    assert str(path) in str(err.value) and (field in str(err.value) or "install_steps" in str(err.value))
    assert isinstance(_cli("protocol-check", str(path)).exception, SchemaError)


def test_bad_protocol_exits_2_from_the_console_script(tmp_path: Path) -> None:
    path = tmp_path / "iq.yaml"
    path.write_text("format: aimd-iq-protocol\nprotocol_id: x\n")
    proc = subprocess.run(
        [sys.executable, "-m", "aimd.cli.main", "iq", "protocol-check", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2 and str(path) in proc.stderr and "Traceback" not in proc.stderr


def test_round_trip_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "iq.yaml"
    path.write_text(dump_protocol(protocol_template("2.0.1")))
    assert load_protocol(path) == protocol_template("2.0.1")
    assert protocol_schema()["title"] == "IQProtocol"
    with pytest.raises(Exception, match="protocol-template"):
        load_protocol(tmp_path / "none.yaml")


def test_platform_section_matches_the_platform_matrix_and_its_routes() -> None:
    from aimd.iq.specs import default_platform_spec
    from aimd.platform.rbac import MATRIX

    spec = default_platform_spec()
    assert {r: sorted(ps) for r, ps in spec.roles.items()} == {
        r.value: sorted(p.value for p in ps) for r, ps in MATRIX.items()
    }
    import re

    api = Path(__file__).resolve().parents[2] / "src/aimd/platform/api"
    source = "".join(p.read_text() for p in sorted(api.glob("*.py")))
    routes = set(re.findall(r'@app\.(get|post|put|patch|delete)\(\s*"([^"]+)"', source))
    for perm, probe in spec.probes.items():
        pattern = re.sub(r"/1(?=/|$)", "/{[a-z_]+}", probe.path)
        assert any(m == probe.method.lower() and re.fullmatch(pattern, p) for m, p in routes), (perm, probe)


def test_platform_section_refuses_unknown_mfa_roles_and_unprobed_permissions() -> None:
    from pydantic import ValidationError

    from aimd.iq.specs import PlatformSpec, default_platform_spec

    base = default_platform_spec().model_dump()
    with pytest.raises(ValidationError, match="mfa_roles"):
        PlatformSpec.model_validate({**base, "mfa_roles": ["superuser"]})
    probes = dict(base["probes"])
    probes.pop("audit.read")
    with pytest.raises(ValidationError, match="no probe request"):
        PlatformSpec.model_validate({**base, "probes": probes})
