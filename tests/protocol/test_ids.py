"""Typed identifiers: strict parsing, no normalisation, disjoint text forms (protocol/ids.py)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.errors import DecodeError, InvalidIdentifier
from protocol.ids import ISO_COUNTRIES, AuthorityId, KeyId, MessageId, NetworkId
from protocol.keys import SigningKey

# --- AuthorityId ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "country"),
    [
        ("FR-PNF", "FR"),
        ("DE-BKA", "DE"),
        ("US-DOJ", "US"),
        ("GB-SFO", "GB"),
        ("BR-CGU12", "BR"),
        ("IT-ANAC", "IT"),
        ("CH-MPC", "CH"),
        ("NG-12", "NG"),  # name may be digits only
        ("FR-" + "A" * 16, "FR"),  # 16-character name: the maximum
        ("ZW-AB", "ZW"),  # 2-character name: the minimum
    ],
)
def test_authority_id_valid(text, country):
    aid = AuthorityId.parse(text)
    assert str(aid) == text
    assert aid.value == text
    assert aid.country == country
    assert aid == AuthorityId.parse(text)
    assert hash(aid) == hash(AuthorityId.parse(text))


@pytest.mark.parametrize(
    "text",
    [
        "fr-pnf",
        "FR-pnf",
        "fr-PNF",
        "Fr-PNF",
        "FR-\u0420NF",  # Cyrillic capital ER, looks like P
        "FR-PN\u0415",  # Cyrillic capital IE, looks like E... at the end
        "\u0410R-PNF",  # Cyrillic A in the country
        "\uff26\uff32-PNF",  # fullwidth FR
        "FR-\uff30\uff2e\uff26",  # fullwidth PNF
        "FR\uff0dPNF",  # fullwidth hyphen-minus
        "FR\u2010PNF",  # Unicode hyphen
        "FR\u2011PNF",  # non-breaking hyphen
        "FR-PNF\x00",
        "\x00FR-PNF",
        "FR-P\x00NF",
        " FR-PNF",
        "FR-PNF ",
        "FR -PNF",
        "FR- PNF",
        "FR-P NF",
        "FR-PNF\n",
        "\tFR-PNF",
        "FR-PNF\u00a0",  # no-break space
        "FR-PNF\u200b",  # zero-width space
        "FR-P",  # name too short
        "FR-",
        "FR-" + "A" * 17,  # 17-character name
        "FR-" + "A" * 40,
        "XX-ABC",  # not an ISO 3166-1 country
        "UK-SFO",  # exceptionally reserved, not officially assigned
        "EU-OLAF",
        "ZZ-ABC",
        "FR_PNF",
        "FR.PNF",
        "FR--PNF",
        "FRPNF",
        "F-PNF",
        "FRA-PNF",
        "FR-PNF-X",
        "FR-PN\u00c9",  # accented letter
        "",
        "-",
    ],
)
def test_authority_id_refused(text):
    with pytest.raises(InvalidIdentifier):
        AuthorityId.parse(text)


@pytest.mark.parametrize(
    "value",
    [b"FR-PNF", bytearray(b"FR-PNF"), 42, None, 1.5, ["FR-PNF"], AuthorityId("FR-PNF")],
)
def test_authority_id_refuses_non_str(value):
    with pytest.raises(InvalidIdentifier):
        AuthorityId.parse(value)


def test_invalid_identifier_is_a_decode_error():
    assert issubclass(InvalidIdentifier, DecodeError)


def test_every_iso_country_parses():
    for cc in sorted(ISO_COUNTRIES):
        assert AuthorityId.parse(f"{cc}-AB").country == cc


@given(st.text(max_size=24))
@settings(max_examples=50, deadline=None)
def test_authority_id_never_normalises(text):
    try:
        aid = AuthorityId.parse(text)
    except InvalidIdentifier:
        return
    assert str(aid) == text


@given(
    st.sampled_from(sorted(ISO_COUNTRIES)),
    st.from_regex(r"[A-Z0-9]{2,16}", fullmatch=True),
)
@settings(max_examples=50, deadline=None)
def test_authority_id_accepts_grammar(cc, name):
    text = f"{cc}-{name}"
    assert str(AuthorityId.parse(text)) == text
    with pytest.raises(InvalidIdentifier):
        AuthorityId.parse(text.lower())


# --- MessageId -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "raw"),
    [
        ("00000000000000000000000000000000", bytes(16)),
        ("0123456789abcdef0123456789abcdef", bytes.fromhex("0123456789abcdef" * 2)),
        ("ffffffffffffffffffffffffffffffff", b"\xff" * 16),
    ],
)
def test_message_id_valid(text, raw):
    mid = MessageId.parse(text)
    assert mid.raw == raw
    assert str(mid) == text
    assert MessageId(raw) == mid


@pytest.mark.parametrize(
    "text",
    [
        "0123456789ABCDEF0123456789ABCDEF",  # upper case
        "0123456789abcdef0123456789abcdeF",
        "0123456789abcdef0123456789abcde",  # 31 digits
        "0123456789abcdef0123456789abcdef0",  # 33 digits
        "0123456789abcdef-0123456789abcdef",
        "0123456789abcdef0123456789abcdeg",
        "0123456789abcdef0123456789abcde ",
        " 0123456789abcdef0123456789abcde",
        "0123456789abcdef0123456789abcde\n",
        "0x23456789abcdef0123456789abcdef",
        "\uff10123456789abcdef0123456789abcdef",  # fullwidth zero
        "",
    ],
)
def test_message_id_refused(text):
    with pytest.raises(InvalidIdentifier):
        MessageId.parse(text)


@pytest.mark.parametrize("value", [bytes(16), 0, None, ["0" * 32]])
def test_message_id_refuses_non_str(value):
    with pytest.raises(InvalidIdentifier):
        MessageId.parse(value)


@pytest.mark.parametrize("length", [0, 15, 17, 32])
def test_message_id_raw_length(length):
    with pytest.raises(InvalidIdentifier):
        MessageId(bytes(length))


def test_message_id_new_uses_rng():
    assert MessageId.new(lambda n: b"\x07" * n) == MessageId(b"\x07" * 16)


# --- KeyId ---------------------------------------------------------------------------------------

_ED_KEY = SigningKey(b"\x01" * 32).verify_key


@pytest.mark.parametrize(
    "text",
    [
        "ed25519:00000000000000000000000000000000",
        "ed25519:0123456789abcdef0123456789abcdef",
        "mlkem768x25519:ffffffffffffffffffffffffffffffff",
    ],
)
def test_key_id_valid(text):
    kid = KeyId.parse(text)
    assert str(kid) == text
    assert kid == KeyId.parse(text)


@pytest.mark.parametrize(
    "text",
    [
        "ED25519:0123456789abcdef0123456789abcdef",
        "ed25519:0123456789ABCDEF0123456789ABCDEF",
        "ed25519:0123456789abcdef0123456789abcde",
        "ed25519:0123456789abcdef0123456789abcdef0",
        "ed25519 :0123456789abcdef0123456789abcdef",
        "ed25519: 0123456789abcdef0123456789abcdef",
        "ed25519:0123456789abcdef0123456789abcdef\n",
        "ed448:0123456789abcdef0123456789abcdef",
        "x25519:0123456789abcdef0123456789abcdef",
        "mlkem768:0123456789abcdef0123456789abcdef",
        "ed25519-0123456789abcdef0123456789abcdef",
        "0123456789abcdef0123456789abcdef",
        ":0123456789abcdef0123456789abcdef",
        "ed25519:",
        "",
    ],
)
def test_key_id_refused(text):
    with pytest.raises(InvalidIdentifier):
        KeyId.parse(text)


@pytest.mark.parametrize("value", [b"ed25519:" + b"0" * 32, 1, None])
def test_key_id_refuses_non_str(value):
    with pytest.raises(InvalidIdentifier):
        KeyId.parse(value)


def test_key_id_of():
    kid = KeyId.of("ed25519", bytes(_ED_KEY))
    assert kid == _ED_KEY.key_id
    assert str(kid).startswith("ed25519:")
    assert len(kid.digest) == 16
    assert KeyId.parse(str(kid)) == kid
    # The algorithm is part of the hash input: same bytes, other algorithm, other id.
    other = KeyId.of("mlkem768x25519", bytes(_ED_KEY))
    assert other.digest != kid.digest
    with pytest.raises(InvalidIdentifier):
        KeyId.of("rsa", bytes(_ED_KEY))


# --- NetworkId -----------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["globe-dev", "abc", "a" * 63, "0net", "globe-prod-2026", "ab-"])
def test_network_id_valid(text):
    assert str(NetworkId.parse(text)) == text


@pytest.mark.parametrize(
    "text",
    [
        "ab",  # too short
        "a" * 64,  # too long
        "-globe",
        "Globe-dev",
        "globe_dev",
        "globe dev",
        "globe.dev",
        "globe-dev\n",
        "glob\u0435-dev",  # Cyrillic ie
        "",
    ],
)
def test_network_id_refused(text):
    with pytest.raises(InvalidIdentifier):
        NetworkId.parse(text)


@pytest.mark.parametrize("value", [b"globe-dev", 3, None])
def test_network_id_refuses_non_str(value):
    with pytest.raises(InvalidIdentifier):
        NetworkId.parse(value)


# --- disjoint text forms -------------------------------------------------------------------------

_SAMPLES = {
    "authority": ["FR-PNF", "BR-CGU12", "US-DOJ"],
    "key": [
        str(_ED_KEY.key_id),
        "mlkem768x25519:0123456789abcdef0123456789abcdef",
    ],
    "message": ["0123456789abcdef0123456789abcdef", "abcdefabcdefabcdefabcdefabcdefab"],
}
_PARSERS = {"authority": AuthorityId.parse, "key": KeyId.parse, "message": MessageId.parse}


@pytest.mark.parametrize(
    ("form", "parser"),
    [(f, p) for f in _SAMPLES for p in _PARSERS if f != p],
)
def test_text_forms_disjoint(form, parser):
    for text in _SAMPLES[form]:
        _PARSERS[form](text)  # valid in its own form
        with pytest.raises(InvalidIdentifier):
            _PARSERS[parser](text)


@pytest.mark.parametrize("text", [*_SAMPLES["authority"], *_SAMPLES["key"]])
def test_authority_and_key_ids_are_not_network_ids(text):
    with pytest.raises(InvalidIdentifier):
        NetworkId.parse(text)


@given(st.binary(min_size=32, max_size=32))
@settings(max_examples=50, deadline=None)
def test_key_ids_never_parse_as_authority_ids(seed):
    kid = str(SigningKey(seed).key_id)
    assert KeyId.parse(kid) == SigningKey(seed).key_id
    with pytest.raises(InvalidIdentifier):
        AuthorityId.parse(kid)
