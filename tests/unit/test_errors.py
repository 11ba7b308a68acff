"""The one refusal catalogue: every code raised in SQL or Python has its own text in English and
Thai, and a refusal raised in SQL gets its domain's text."""

from __future__ import annotations

import ast
import datetime as dt
import re
from pathlib import Path

import pytest

import kuekan.app
import kuekan.worker
from kuekan import errors
from kuekan.app import HTTP_CODES
from kuekan.auth import policy as auth_policy
from kuekan.db.pool import refusal_for_state
from kuekan.errors import CATALOGUE, FALLBACK_TH, DomainError, known, register
from kuekan.missions import model as missions_model
from kuekan.rewards import model as rewards_model

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "kuekan"
THAI = re.compile(r"[\u0E00-\u0E7F]")
# perform kk_refuse('code'[, 'KKnnn']) in the migrations.
SQL_REFUSE = re.compile(r"kk_refuse\('([a-z_]+)'")
# kk_budget_take refuses with split_part(budget key, ':', 1) || '_budget_exhausted'; budget keys
# start with the budget's kind (kuekan.cache.budget_key / the ledger's limit checks).
SQL_BUDGET = "|| '_budget_exhausted'"
BUDGET_KINDS = ("funder", "mission")


def _sql_codes() -> set[str]:
    text = "\n".join(p.read_text() for p in sorted((ROOT / "sql").rglob("*.sql")))
    codes = set(SQL_REFUSE.findall(text))
    assert SQL_BUDGET in text
    return codes | {f"{kind}_budget_exhausted" for kind in BUDGET_KINDS}


def _calls() -> tuple[set[str], set[str]]:
    """Codes passed as literals to known(), DomainError() and app._problem(), and the call
    sites that pass a computed code."""
    literal: set[str] = set()
    dynamic: set[str] = set()
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id in {"known", "DomainError", "_problem"} and node.args):
                continue
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                literal.add(first.value)
            else:
                dynamic.add(f"{path.relative_to(SRC)}:{ast.unparse(first)}")
    return literal, dynamic


def _decide_codes() -> set[str]:
    """The codes MissionService._decide returns (``return <decision>, "code"``)."""
    tree = ast.parse((SRC / "missions" / "service.py").read_text())
    fn = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "_decide")
    return {elt.value for ret in ast.walk(fn) if isinstance(ret, ast.Return)
            and isinstance(ret.value, ast.Tuple)
            for elt in ret.value.elts if isinstance(elt, ast.Constant)
            and isinstance(elt.value, str)}


def _python_codes() -> set[str]:
    literal, dynamic = _calls()
    # Every call with a computed code is listed here with where its codes come from; a new one
    # fails this test until its codes are walked too.
    assert dynamic == {
        "errors.py:code",  # known() building the DomainError of a catalogue entry
        "db/pool.py:code",  # refusals raised in SQL: _sql_codes()
        "app.py:code",  # HTTP_CODES and the literal codes of app.py
        "idempotency.py:lim.code",  # the ledger's limit checks: daily, merchant, budgets
        "missions/service.py:code",  # _decide and decision_refusal
        "rewards/service.py:why",  # rewards.model.offline_refusal
        "auth/policy.py:missing",  # auth.policy.OWNERS: each kind's not-found code
        "auth/staff.py:code",  # refresh_refused: refresh_token_invalid | refresh_token_reused
    }, dynamic
    now = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    offline = {rewards_model.offline_refusal(at, now, 24, 60) for at in (
        now.replace(tzinfo=None), now + dt.timedelta(hours=1), now - dt.timedelta(days=2))}
    decisions = {missions_model.decision_refusal(d) for d in ("outside", "inaccurate")}
    owners = {missing for _, missing in auth_policy.OWNERS.values()}
    refresh = {"refresh_token_invalid", "refresh_token_reused"}
    limits = {"daily_limit_reached", "merchant_daily_cap_reached",
              *(f"{kind}_budget_exhausted" for kind in BUDGET_KINDS)}
    dynamic_codes = ({c for c in offline | decisions if c} | limits | owners | refresh
                     | _decide_codes())
    return literal | dynamic_codes | set(HTTP_CODES.values()) | {"http_error"}


def test_the_walk_finds_the_codes_it_should() -> None:
    sql, python = _sql_codes(), _python_codes()
    # A few known members of each source, so a broken pattern cannot pass with an empty set.
    assert {"already_completed", "mission_locked", "out_of_stock", "member_on_hold",
            "mission_budget_exhausted"} <= sql
    assert {"outside_geofence", "offline_window_expired", "review_closed", "invalid_msisdn",
            "unauthorized", "temporarily_unavailable", "mission_not_checkin"} <= python
    assert len(sql) >= 30 and len(python) >= 70


@pytest.mark.parametrize("code", sorted(_sql_codes() | _python_codes()))
def test_every_raised_code_has_its_own_text_in_both_languages(code: str) -> None:
    assert code in CATALOGUE, f"{code} is raised but not in the refusal catalogue"
    entry = CATALOGUE[code]
    assert 400 <= entry.status < 600
    assert entry.en.strip() and entry.th.strip() and entry.en != entry.th
    assert THAI.search(entry.th), entry.th
    assert entry.th != FALLBACK_TH


def test_no_two_codes_share_a_text() -> None:
    for lang in ("en", "th"):
        seen: dict[str, str] = {}
        for code, entry in CATALOGUE.items():
            text = getattr(entry, lang)
            assert text not in seen, f"{code} and {seen[text]} share the {lang} text {text!r}"
            seen[text] = code


def test_a_mission_refusal_raised_in_sql_gets_the_missions_text() -> None:
    exc = refusal_for_state("already_completed", "KK409")
    assert (exc.status, exc.message_en, exc.message_th) == (
        409, "You have already completed this mission for this period",
        "คุณทำภารกิจนี้ครบแล้วในรอบนี้")
    assert refusal_for_state("mission_not_for_audience", "KK403").message_en == \
        "This mission is not open to your member group"
    # The SQLSTATE's status wins over the catalogue's (the SQL decided it).
    assert refusal_for_state("funder_not_found", "KK422").status == 422


def test_registering_a_code_twice_with_other_text_fails_at_import() -> None:
    register({"review_closed": CATALOGUE["review_closed"]})  # the same text again: fine
    with pytest.raises(ValueError, match="registered twice"):
        register({"review_closed": (409, "Something else", "อย่างอื่น")})


def test_known_keeps_catalogue_text_unless_a_detail_replaces_it() -> None:
    exc = known("out_of_stock")
    assert isinstance(exc, DomainError)
    assert (exc.status, exc.message_en) == (409, "This reward is out of stock")
    detailed = known("unauthorized", en="token expired")
    assert detailed.message_en == "token expired"
    assert detailed.message_th == CATALOGUE["unauthorized"].th
    assert known("validation_failed", errors=[1]).to_problem()["errors"] == [1]


def test_every_domain_registers_through_its_package() -> None:
    assert errors.SHARED.keys() <= CATALOGUE.keys()
    assert kuekan.app.create_app and kuekan.worker.WorkerSettings
    for domain in ("missions", "rewards", "geo", "fraud", "agencies", "notify", "analytics",
                   "outbox", "privacy"):
        module = __import__(f"kuekan.{domain}.refusals", fromlist=["REFUSALS"])
        assert module.REFUSALS and module.REFUSALS.keys() <= CATALOGUE.keys()
