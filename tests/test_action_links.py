from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from worker.errors import LinkRefused, RejectedDelivery
from worker.oneclick import links
from worker.oneclick.links import LinkClaims, sign_link, verify_link

SECRET = "action-secret-0123456789abcdef"
OLD_SECRET = "action-secret-previous-9876543210"
BASE = "https://router.example.com/lr"
NOW = 1_800_000_000
EXPIRES = NOW + links.DEFAULT_TTL_SECONDS


def _link(secret: str = SECRET, **overrides: object) -> str:
    fields: dict[str, object] = {
        "draft_id": "drf_1",
        "followup_id": "fu_1",
        "sdr_id": "sdr_1",
        "expires_at": EXPIRES,
        "base_url": BASE,
    }
    fields.update(overrides)
    return sign_link(secret, **fields)  # type: ignore[arg-type]


def _params(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))


def _refused(params: dict[str, str], now: int = NOW, secret: object = SECRET) -> LinkRefused:
    with pytest.raises(LinkRefused) as caught:
        verify_link(secret, params, now)  # type: ignore[arg-type]
    return caught.value


def test_a_signed_link_verifies_to_its_claims() -> None:
    claims = verify_link(SECRET, _params(_link()), NOW)
    assert claims == LinkClaims("drf_1", "fu_1", "sdr_1", EXPIRES)


@given(
    draft=st.text(min_size=1),
    followup=st.text(min_size=1),
    sdr=st.text(min_size=1),
    expires=st.integers(min_value=NOW + 1, max_value=10**11),
)
def test_any_ids_round_trip(draft: str, followup: str, sdr: str, expires: int) -> None:
    url = _link(draft_id=draft, followup_id=followup, sdr_id=sdr, expires_at=expires)
    assert verify_link(SECRET, _params(url), NOW) == LinkClaims(draft, followup, sdr, expires)


@pytest.mark.parametrize(
    "hostile",
    [
        "a&b=c",
        "a=b&sig=x",
        "&d=drf_2",
        "%26already%3Dencoded",
        "a+b c",
        "../../admin?x=1#frag",
        "ünïcödé ✉ 中文 🙂",
        "line\nbreak\r\ttab\x00nul",
        "x" * 5000,
    ],
)
def test_hostile_ids_round_trip_and_stay_in_their_field(hostile: str) -> None:
    url = _link(draft_id=hostile, followup_id=hostile, sdr_id=hostile)
    params = _params(url)
    assert set(params) == {"d", "f", "s", "e", "sig"}
    assert verify_link(SECRET, params, NOW) == LinkClaims(hostile, hostile, hostile, EXPIRES)


def test_the_url_is_absolute_under_the_base_and_holds_no_secret() -> None:
    url = _link()
    assert url.startswith(BASE + "/actions/send?")
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == (
        "https",
        "router.example.com",
        "/lr/actions/send",
    )
    assert SECRET not in url
    assert _link(base_url=BASE + "/") == url


@pytest.mark.parametrize(
    ("name", "value"),
    [("d", "drf_2"), ("f", "fu_2"), ("s", "sdr_2"), ("e", str(EXPIRES + 3600))],
)
def test_each_altered_field_is_refused(name: str, value: str) -> None:
    params = _params(_link())
    params[name] = value
    assert _refused(params).reason == "signature"


def test_fields_cannot_bleed_into_each_other() -> None:
    one = _params(_link(draft_id="ab", followup_id="c"))
    other = _params(_link(draft_id="a", followup_id="bc"))
    assert one["sig"] != other["sig"]
    one["sig"] = other["sig"]
    assert _refused(one).reason == "signature"


@pytest.mark.parametrize("name", ["d", "f", "s", "e", "sig"])
@pytest.mark.parametrize("drop", [True, False])
def test_a_missing_or_empty_field_is_refused(name: str, drop: bool) -> None:
    params = _params(_link())
    if drop:
        del params[name]
    else:
        params[name] = ""
    assert _refused(params).reason == "missing"


def test_the_link_is_good_until_its_expiry_second() -> None:
    params = _params(_link())
    assert verify_link(SECRET, params, EXPIRES - 1).expires_at == EXPIRES
    assert _refused(params, now=EXPIRES).reason == "expired"
    assert _refused(params, now=EXPIRES + 1).reason == "expired"


def test_a_forged_link_is_refused_as_forged_even_when_expired() -> None:
    params = _params(_link(expires_at=NOW - 10))
    params["sig"] = "A" * 43
    assert _refused(params).reason == "signature"


@pytest.mark.parametrize("forged", ["A" * 43, "not-a-signature", "ü" * 43, "x" * 10_000])
def test_a_forged_signature_is_refused(forged: str) -> None:
    params = _params(_link())
    params["sig"] = forged
    assert _refused(params).reason == "signature"


def test_a_link_under_another_secret_is_refused() -> None:
    params = _params(_link(secret="someone-elses-secret"))
    assert _refused(params).reason == "signature"


def test_the_previous_secret_verifies_during_a_rotation() -> None:
    params = _params(_link(secret=OLD_SECRET))
    assert verify_link([SECRET, OLD_SECRET], params, NOW).draft_id == "drf_1"
    assert _refused(params, secret=[SECRET]).reason == "signature"


@pytest.mark.parametrize(
    "expiry", ["+1900000000", "01900000000", "1.9e9", " 1900000000", "١٩", "-1", "9" * 40]
)
def test_an_expiry_not_written_by_sign_link_is_malformed(expiry: str) -> None:
    params = _params(_link())
    params["e"] = expiry
    assert _refused(params).reason == "malformed"


def test_text_that_cannot_be_utf8_is_malformed() -> None:
    params = _params(_link())
    params["d"] = "\ud800"
    assert _refused(params).reason == "malformed"


def test_refusals_are_403_rejections_that_carry_no_secret() -> None:
    params = _params(_link(secret=OLD_SECRET))
    error = _refused(params)
    assert isinstance(error, RejectedDelivery)
    assert error.status == 403
    for text in (str(error), repr(error), repr(error.args)):
        assert SECRET not in text
        assert OLD_SECRET not in text
        assert params["sig"] not in text


@pytest.mark.parametrize(
    "overrides",
    [
        {"draft_id": ""},
        {"followup_id": ""},
        {"sdr_id": ""},
        {"expires_at": -1},
        {"base_url": "router.example.com"},
        {"base_url": "ftp://router.example.com"},
        {"base_url": "https://router.example.com/?x=1"},
        {"base_url": "/relative"},
    ],
)
def test_sign_link_refuses_bad_input(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        _link(**overrides)


@pytest.mark.parametrize("secret", ["", [], [""], [SECRET, ""]])
def test_an_empty_secret_is_a_setting_bug(secret: object) -> None:
    with pytest.raises(ValueError):
        verify_link(secret, _params(_link()), NOW)  # type: ignore[arg-type]
    if isinstance(secret, str):
        with pytest.raises(ValueError):
            _link(secret=secret)
