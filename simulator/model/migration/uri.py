"""Migration URIs as each product reads them: a mode and its target, or why not.

``migrate`` and ``-incoming`` share one parser per product (a profile's ``uri_rules``):

- StratoVirt v2.5 (machine_manager/src/config/incoming.rs ``parse_incoming_uri``): the
  text before the first ``,`` splits at its first ``:`` into mode and uri; that and at
  most one option after the comma become ``mode=..,uri=..[,option]``, cut at ``,`` and
  ``=`` into ``--key value`` words (config/mod.rs ``str_slip_to_clap``) that clap parses
  (options: mode, uri, mapped=true|false). The mode is ``file|File|FILE``,
  ``unix|Unix|UNIX`` or ``tcp|Tcp|TCP``, anything else Unknown (still a valid URI).
  ``check_valid``: the uri has at most one ``:``, none for file and unix, exactly one
  for tcp, whose parts are an IPv4 address (``Ipv4Addr``) and a ``u16`` port.
- StratoVirt v2.4 (v2.4.0 incoming.rs): the whole URI splits at every ``:``; two parts
  for file or unix, three for tcp (IPv4, u16); anything else, an unknown mode
  included, does not parse. There are no options: ``,mapped=false`` is part of a path.
- QEMU 7.2 (migration/migration.c ``qemu_start_outgoing_migration``): a case-sensitive
  ``tcp:``, ``unix:`` or ``exec:`` prefix with something after it (7.2 has no
  ``file:``); names are resolved later, so no address check here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum

from simulator.model.profile_kinds import UriRules


class UriMode(Enum):
    FILE = "file"
    UNIX = "unix"
    TCP = "tcp"
    EXEC = "exec"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class MigrationUri:
    """A parsed URI: file/unix path, tcp ``IP:PORT``, exec command, or an unknown mode's rest."""

    mode: UriMode
    target: str
    mapped: bool = True  # -incoming file:DIR,mapped=false (StratoVirt 2.5)

    @property
    def endpoint(self) -> str:
        """``mode:target`` in the simulator's own spelling (lower-case mode, no options)."""
        return f"{self.mode.value}:{self.target}"


class UriError(ValueError):
    """A URI the rules cannot parse; ``str()`` is the product's own detail text."""


# incoming.rs MigrateMode::from: exactly these spellings.
_SV_MODES = {
    **dict.fromkeys(("file", "File", "FILE"), UriMode.FILE),
    **dict.fromkeys(("unix", "Unix", "UNIX"), UriMode.UNIX),
    **dict.fromkeys(("tcp", "Tcp", "TCP"), UriMode.TCP),
}
_RUST_MODE = {UriMode.FILE: "File", UriMode.UNIX: "Unix", UriMode.TCP: "Tcp"}
# Rust's Ipv4Addr::from_str: four decimal octets, no leading zeros, each <= 255.
_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])"
_IPV4 = re.compile(rf"{_OCTET}(\.{_OCTET}){{3}}")
# Rust's u16::from_str: an optional '+', then decimal digits.
_U16 = re.compile(r"\+?[0-9]+")


def _rust_debug(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _ipv4_port(ip: str, port: str) -> None:
    if not _IPV4.fullmatch(ip):
        raise UriError(f"Invalid ip address {ip}")
    if not _U16.fullmatch(port) or int(port) > 0xFFFF:
        raise UriError(f"Invalid ip port {port}")


def _clap_words(cli: str) -> list[str]:
    """config/mod.rs str_slip_to_clap: "k=v" -> "--k v", "k" -> "--k"."""
    words: list[str] = []
    for part in cli.split(","):
        for i, piece in enumerate(part.split("=")):
            words.append(f"--{piece}" if i % 2 == 0 else piece)
    return words


def _clap_parse(words: list[str]) -> dict[str, list[str]]:
    """clap 4 on IncomingConfig: --mode and --uri once each, --mapped any number of times;
    each takes one value that does not start with '-'; "--" ends the options."""
    seen: dict[str, list[str]] = {}
    i = 0
    while i < len(words):
        word = words[i]
        if word == "--":
            if i + 1 < len(words):
                raise UriError(f"unexpected argument '{words[i + 1]}' found")
            break
        name = word[2:] if word.startswith("--") else ""
        if name not in ("mode", "uri", "mapped"):
            raise UriError(f"unexpected argument '{word}' found")
        if i + 1 >= len(words) or (words[i + 1].startswith("-") and words[i + 1] != "-"):
            raise UriError(f"a value is required for '--{name} <{name.upper()}>'")
        if name in seen and name != "mapped":
            raise UriError(
                f"the argument '--{name} <{name.upper()}>' cannot be used multiple times"
            )
        seen.setdefault(name, []).append(words[i + 1])
        i += 2
    for name in ("mode", "uri"):
        if name not in seen:
            raise UriError(f"the following required arguments were not provided: --{name}")
    return seen


def _stratovirt_25(uri: str) -> MigrationUri:
    parts = uri.split(",")
    mode_text, colon, target = parts[0].partition(":")
    if not colon:
        raise UriError(f"Invalid incoming config {uri}")
    cli = f"mode={mode_text},uri={target}" + (f",{parts[1]}" if len(parts) > 1 else "")
    values = _clap_parse(_clap_words(cli))
    mapped_text = values.get("mapped", ["true"])[0]
    if mapped_text not in ("true", "false"):
        raise UriError(f"invalid value '{mapped_text}' for '--mapped <MAPPED>'")
    mode = _SV_MODES.get(values["mode"][0], UriMode.UNKNOWN)
    target, mapped = values["uri"][0], mapped_text == "true"
    pieces = target.split(":")
    n = len(pieces)
    if (
        n not in (1, 2)
        or (mode in (UriMode.FILE, UriMode.UNIX) and n != 1)
        or (mode is UriMode.TCP and n != 2)
    ):
        rust = _RUST_MODE.get(mode, "Unknown")
        raise UriError(
            f"Invalid incoming uri. IncomingConfig {{ mode: {rust}, uri: {_rust_debug(target)}, "
            f"mapped: {str(mapped).lower()} }}"
        )
    if mode is UriMode.TCP:
        _ipv4_port(pieces[0], pieces[1])
    return MigrationUri(mode, target, mapped)


def _stratovirt_24(uri: str) -> MigrationUri:
    parts = uri.split(":")
    mode = _SV_MODES.get(parts[0], UriMode.UNKNOWN)
    if len(parts) == 2 and mode in (UriMode.FILE, UriMode.UNIX):
        return MigrationUri(mode, parts[1])
    if len(parts) == 3 and mode is UriMode.TCP:
        _ipv4_port(parts[1], parts[2])
        return MigrationUri(mode, f"{parts[1]}:{parts[2]}")
    raise UriError(f"Invalid incoming uri {uri}")


_QEMU_SCHEMES = {"tcp": UriMode.TCP, "unix": UriMode.UNIX, "exec": UriMode.EXEC}


def _qemu(uri: str) -> MigrationUri:
    scheme, colon, rest = uri.partition(":")
    mode = _QEMU_SCHEMES.get(scheme, UriMode.UNKNOWN) if colon else UriMode.UNKNOWN
    if mode is not UriMode.UNKNOWN and not rest:
        raise UriError(f"{scheme}: no address given")
    return MigrationUri(mode, rest)


_PARSERS: Mapping[UriRules, Callable[[str], MigrationUri]] = {
    UriRules.STRATOVIRT_25: _stratovirt_25,
    UriRules.STRATOVIRT_24: _stratovirt_24,
    UriRules.QEMU: _qemu,
}


def parse_uri(rules: UriRules, uri: str) -> MigrationUri:
    """The URI as ``rules`` read it; :class:`UriError` with the product's text if they cannot."""
    return _PARSERS[rules](uri)
