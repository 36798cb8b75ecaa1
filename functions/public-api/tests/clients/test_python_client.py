#!/usr/bin/env python3
"""The README's curl walk-through, driven through the Python client that openapi-python-client
generates from the served /api/public/openapi.json (its api modules and attrs models, not raw
HTTP), against trcker-local. Run by scripts/openapi-clients, which generates the client, starts
the gateways and passes them in the environment:

    OPENAPI_PYTHON_CLIENT   directory holding the generated package `trcker_public_api_client`
    TRCKER_API, TRCKER_KEY  a gateway (memory store, seeded demo brand) and its demo key
    TRCKER_LIMITED_API, TRCKER_LIMITED_KEY, TRCKER_LIMITED_RATE
                            a second gateway whose key budget is TRCKER_LIMITED_RATE a minute

Checks: whoami; create a partner and an offer; page through partners with the cursor; a click
captured for them (raw HTTP: capture is not in the public API document) then a page of clicks
and the filtered list; a conversion priced by the offer's default payout, and its duplicate; the
delivery log's record of that conversion; 404 (unknown partner), 422 (a conversion naming an
unknown click), 400 (a schema-valid body the API refuses), 401 (unknown key) and 429 (the low
budget), each with the error body's stable `code`.

Every client is built with raise_on_unexpected_status, so an answer whose status the document
does not list fails, and the generated models' from_dict fails on a missing required field; on
top of that each parsed model must carry no undocumented field (`additional_properties`).

The last line is `python client checks: N passed; F failed` (scripts/openapi-clients reads it);
exit status 1 on any failure.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from typing import Any, Callable

import httpx

sys.path.insert(0, os.environ["OPENAPI_PYTHON_CLIENT"])

from trcker_public_api_client import AuthenticatedClient  # noqa: E402
from trcker_public_api_client.api.activity import list_activity  # noqa: E402
from trcker_public_api_client.api.clicks import get_click, list_clicks  # noqa: E402
from trcker_public_api_client.api.conversions import create_conversion  # noqa: E402
from trcker_public_api_client.api.meta import get_whoami  # noqa: E402
from trcker_public_api_client.api.offers import create_offer  # noqa: E402
from trcker_public_api_client.api.partners import create_partner, get_partner, list_partners  # noqa: E402
from trcker_public_api_client.models import (  # noqa: E402
    ActivityList,
    Click,
    ClickList,
    CreateConversion,
    CreateOffer,
    CreatePartner,
    ErrorResponse,
    Offer,
    OfferStatus,
    Partner,
    PartnerList,
    PartnerStatus,
    Payout,
    PayoutSource,
    PayoutType,
    Recorded,
    Whoami,
)
from trcker_public_api_client.types import UNSET  # noqa: E402

# Our own user agent, so the delivery log's record can be told from the seed's and checked.
USER_AGENT = "trcker-openapi-clients-test/1"
# Capture scores automation user agents as bots; the click stands for a real visit.
BROWSER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
TIMEOUT = httpx.Timeout(10.0)


class Runner:
    """Named checks, one line each, and a closing count scripts/openapi-clients reads."""

    def __init__(self) -> None:
        self.passed = 0
        self.failed: list[str] = []

    def check(self, name: str, body: Callable[[], Any]) -> None:
        try:
            body()
        except Exception as error:  # noqa: BLE001 - every failure is a test result
            if isinstance(error, AssertionError):
                message = str(error) or "assertion failed"
            else:
                frames = "".join(traceback.format_tb(error.__traceback__)[-3:]).rstrip()
                message = f"{type(error).__name__}: {error}\n{frames}"
            self.failed.append(name)
            print(f"test {name} ... FAILED\n    {message.replace(chr(10), chr(10) + '    ')}", flush=True)
            return
        self.passed += 1
        print(f"test {name} ... ok", flush=True)

    def finish(self) -> int:
        print(f"python client checks: {self.passed} passed; {len(self.failed)} failed", flush=True)
        return 1 if self.failed else 0


def client(base: str, key: str) -> AuthenticatedClient:
    return AuthenticatedClient(
        base_url=base,
        token=key,
        headers={"User-Agent": USER_AGENT},
        timeout=TIMEOUT,
        raise_on_unexpected_status=True,
    )


def expect(response: Any, status: int, model: type) -> Any:
    """The response's status and parsed type, and no field the document does not describe."""
    assert response.status_code == status, (
        f"expected {status}, got {int(response.status_code)}: {response.content[:300]!r}"
    )
    parsed = response.parsed
    assert isinstance(parsed, model), f"expected a {model.__name__}, got {type(parsed).__name__}"
    extra = getattr(parsed, "additional_properties", {})
    assert extra == {}, f"{model.__name__} has fields the document does not describe: {sorted(extra)}"
    return parsed


def expect_error(response: Any, status: int, code: str) -> ErrorResponse:
    body = expect(response, status, ErrorResponse)
    assert body.error.code == code, f"expected code {code!r}, got {body.error.code!r} ({body.error.message})"
    assert isinstance(body.error.message, str) and body.error.message, "empty error message"
    return body


def run(runner: Runner) -> None:
    api = client(os.environ["TRCKER_API"], os.environ["TRCKER_KEY"])
    state: dict[str, Any] = {}

    def needs(*names: str) -> None:
        missing = [name for name in names if name not in state]
        assert not missing, f"needs the earlier step(s) that make {missing}"

    def whoami() -> None:
        me = expect(get_whoami.sync_detailed(client=api), 200, Whoami)
        assert me.brand_id == "demo", me.brand_id
        assert me.fingerprint.startswith("fp_"), me.fingerprint
        assert me.key_id.startswith("key_"), me.key_id
        state["me"] = me

    def create_a_partner() -> None:
        body = CreatePartner(name="Carol Reviews", email="carol@reviews.example", slug="carol-reviews")
        partner = expect(create_partner.sync_detailed(client=api, body=body), 201, Partner)
        assert partner.id.startswith("ptr_"), partner.id
        assert (partner.name, partner.email, partner.slug) == ("Carol Reviews", "carol@reviews.example", "carol-reviews")
        assert isinstance(partner.status, PartnerStatus), type(partner.status)
        again = expect(get_partner.sync_detailed(partner.id, client=api), 200, Partner)
        assert again.to_dict() == partner.to_dict(), (again.to_dict(), partner.to_dict())
        state["partner"] = partner

    def create_an_offer() -> None:
        body = CreateOffer(
            name="Winter Sale",
            slug="winter-sale",
            destination_url="https://shop.example/winter",
            default_payout=Payout(type_=PayoutType.PERCENT, amount=15),
        )
        offer = expect(create_offer.sync_detailed(client=api, body=body), 201, Offer)
        assert offer.id.startswith("off_"), offer.id
        assert offer.default_payout.type_ is PayoutType.PERCENT, offer.default_payout.type_
        assert offer.default_payout.amount == 15, offer.default_payout.amount
        assert isinstance(offer.status, OfferStatus), type(offer.status)
        state["offer"] = offer

    def page_through_partners() -> None:
        needs("partner")
        seen: list[str] = []
        cursor: Any = UNSET
        for _ in range(10):
            page = expect(list_partners.sync_detailed(client=api, limit=2, cursor=cursor), 200, PartnerList)
            assert len(page.data) <= 2, len(page.data)
            seen += [partner.id for partner in page.data]
            if not isinstance(page.next_cursor, str):
                break
            cursor = page.next_cursor
        # The seed's two partners and ours: more than one page of two.
        assert len(seen) == 3 and len(set(seen)) == 3, seen
        assert state["partner"].id in seen, seen

    def capture_and_list_clicks() -> None:
        needs("partner", "offer")
        click_id = "openapi-clients-click-1"
        # Capture is its own route, not in the public API's document: plain HTTP here.
        captured = httpx.post(
            f"{os.environ['TRCKER_API']}/api/clicks/capture",
            headers={"x-api-key": os.environ["TRCKER_KEY"], "User-Agent": BROWSER_AGENT},
            json={"click_id": click_id, "offer": "winter-sale", "partner": "carol-reviews", "sub1": "newsletter"},
            timeout=TIMEOUT,
        )
        assert captured.status_code == 201, (captured.status_code, captured.text)
        assert captured.json() == {"status": "recorded", "click_id": click_id}, captured.text

        page = expect(list_clicks.sync_detailed(client=api, limit=3), 200, ClickList)
        assert len(page.data) == 3, len(page.data)
        assert isinstance(page.next_cursor, str), "200 seeded clicks and more: there is a next page"
        times = [click.at for click in page.data]
        assert times == sorted(times, reverse=True), f"not newest first: {times}"
        for click in page.data:
            assert isinstance(click, Click) and click.additional_properties == {}, click
            assert isinstance(click.fraud_score, int) and isinstance(click.flagged, bool), click

        ours = expect(
            list_clicks.sync_detailed(client=api, partner_id=state["partner"].id, offer_id=state["offer"].id),
            200,
            ClickList,
        )
        assert [click.click_id for click in ours.data] == [click_id], [click.click_id for click in ours.data]
        click = expect(get_click.sync_detailed(click_id, client=api), 200, Click)
        assert (click.partner_id, click.offer_id, click.sub1) == (state["partner"].id, state["offer"].id, "newsletter"), click
        assert click.user_agent == BROWSER_AGENT, click.user_agent
        state["click"] = click

    def record_a_conversion() -> None:
        needs("click")
        body = CreateConversion(click_id=state["click"].click_id, amount=120, txn_id="order-1001")
        recorded = expect(create_conversion.sync_detailed(client=api, body=body), 201, Recorded)
        assert recorded.duplicate is False, recorded.duplicate
        assert recorded.id, recorded
        # Attributed through the click, priced by the offer's default payout: 15 % of 120.
        assert (recorded.partner_id, recorded.offer_id) == (state["partner"].id, state["offer"].id), recorded
        assert recorded.payout.source is PayoutSource.OFFER_DEFAULT, recorded.payout.source
        assert recorded.payout.amount == 18, recorded.payout.amount
        assert recorded.payout.currency == recorded.currency, (recorded.payout.currency, recorded.currency)
        assert recorded.txn_id == "order-1001" and recorded.amount == 120, recorded
        assert recorded.seconds_from_click >= 0, recorded.seconds_from_click

        repeated = expect(create_conversion.sync_detailed(client=api, body=body), 200, Recorded)
        assert repeated.duplicate is True, repeated.duplicate
        assert repeated.id == recorded.id, (repeated.id, recorded.id)
        state["conversion"] = recorded

    def read_the_delivery_log() -> None:
        needs("me", "conversion")
        me = state["me"]
        # The record is written with the answer; a short poll keeps this independent of when.
        deadline = time.monotonic() + 2
        while True:
            log = expect(list_activity.sync_detailed(client=api, source="api", limit=25), 200, ActivityList)
            hits = [
                entry
                for entry in log.data
                if entry.method == "POST" and entry.target == "/api/public/conversions" and entry.status == 201
            ]
            if hits or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert len(hits) == 1, [(e.method, e.target, e.status) for e in log.data]
        entry = hits[0]
        assert entry.additional_properties == {}, entry.additional_properties
        assert entry.source == "api" and entry.outcome == "ok", (entry.source, entry.outcome)
        assert (entry.key_id, entry.fingerprint) == (me.key_id, me.fingerprint), entry
        assert entry.source_ip == "127.0.0.1", entry.source_ip
        assert entry.user_agent == USER_AGENT, entry.user_agent
        assert isinstance(entry.latency_ms, int), entry.latency_ms
        assert all(e.source == "api" for e in log.data), {e.source for e in log.data}

    def not_found() -> None:
        expect_error(get_partner.sync_detailed("ptr_0000000000000000", client=api), 404, "not_found")

    def unprocessable() -> None:
        # Schema-valid, but the click is not the brand's: 422, as the README's error table says.
        body = CreateConversion(click_id="no-such-click", amount=10, txn_id="order-unknown-click")
        expect_error(create_conversion.sync_detailed(client=api, body=body), 422, "unprocessable_entity")

    def invalid_body() -> None:
        # The API answers an invalid body (bad JSON, a missing or malformed field) 400, not 422:
        # 422 is kept for references to something the brand does not have (above).
        body = CreatePartner(name="Dan", email="not-an-address", slug="dan")
        error = expect_error(create_partner.sync_detailed(client=api, body=body), 400, "invalid_request")
        assert "email" in error.error.message, error.error.message

    def unauthorized() -> None:
        stranger = client(os.environ["TRCKER_API"], "tk_" + "0" * 40)
        response = list_clicks.sync_detailed(client=stranger, limit=1)
        expect_error(response, 401, "unauthorized")
        assert response.headers.get("www-authenticate", "").startswith("Bearer"), dict(response.headers)

    def rate_limited() -> None:
        limit = int(os.environ["TRCKER_LIMITED_RATE"])
        limited = client(os.environ["TRCKER_LIMITED_API"], os.environ["TRCKER_LIMITED_KEY"])
        answered = 0
        # A minute boundary may refill the budget once during the loop: twice the budget, and one.
        for _ in range(2 * limit + 2):
            response = list_clicks.sync_detailed(client=limited, limit=1)
            if response.status_code != 200:
                break
            expect(response, 200, ClickList)
            answered += 1
        assert answered >= 1, "the first request within the budget was refused"
        expect_error(response, 429, "rate_limited")
        retry = response.headers.get("retry-after", "")
        assert retry.isdigit() and 0 < int(retry) <= 60, f"Retry-After {retry!r}"
        assert response.headers.get("ratelimit-limit") == str(limit), dict(response.headers)
        assert response.headers.get("ratelimit-remaining") == "0", dict(response.headers)

    runner.check("whoami", whoami)
    runner.check("create_partner", create_a_partner)
    runner.check("create_offer", create_an_offer)
    runner.check("list_partners_with_cursor", page_through_partners)
    runner.check("capture_then_list_clicks", capture_and_list_clicks)
    runner.check("create_conversion_and_duplicate", record_a_conversion)
    runner.check("list_activity_delivery_log", read_the_delivery_log)
    runner.check("error_404_unknown_partner", not_found)
    runner.check("error_422_unknown_click", unprocessable)
    runner.check("error_400_invalid_body", invalid_body)
    runner.check("error_401_unknown_key", unauthorized)
    runner.check("error_429_rate_limited", rate_limited)


def main() -> int:
    runner = Runner()
    run(runner)
    return runner.finish()


if __name__ == "__main__":
    sys.exit(main())
