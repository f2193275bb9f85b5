"""Reality: delivery delays, loss and provider shares of the model beside published
measurements. Comparisons (``scored=False``): each note says where the model and the
measurement differ and why, and which figures are inputs seen through the model.

Two worlds:

- **The provider-share world** (most rows): the generated Internet of
  ``sim.generate.internet`` (docs/generate.md), whose big providers hold the measured
  shares of people (Gmail 39 %, Microsoft 35 %, Yahoo 18 %) with a Zipf tail of ISPs
  and companies, ESPs and a spam botnet. Quick: 3 worlds of 100 domains in 4 regions at
  5 rows/s; full: 10 worlds of 1,000 domains in 10 regions at 10 rows/s; each one
  simulated hour and a 30-minute drain, each replication a world and run of its own
  seed. It has no faults (no outage, no throttling, no filter that discards), so its
  tail and its silent loss are the model's floor.
- **The default scenario** (the tail and silent-loss rows, beside the world's): one busy
  hour of a hand-made world with a throttling receiver (Yahoo), an MX outage (acme) and
  content filters that discard; quick 3 seeds, full 10. It keeps these rows because it
  has the mechanisms that make a tail and silent loss, which the generated world has not.

Delays and loss count legitimate mail only (neither spam nor bounces of spam): the measurements sent
test messages between real accounts. Each figure is the mean over replications with its
Student-t 95 % interval.

The measurements:

- T. Moors, "Email dependability", UNSW, 2004 (reported in B. Livingston, "The Internet
  Ate My E-Mail", Datamation, 2004): 1.57 % of test messages never arrived, about a
  third of them (0.5 %) without any notice.
- M. Afergan and R. Beverly, "The State of the Email Address", ACM SIGCOMM CCR 35(1),
  2005: probes to addresses that do not exist, timed by their bounces (a round trip
  through the receiver's queue, not a delivery): most came back within seconds to
  minutes; a tail of hours to days (one after 30 days); some servers lost 25-75 % of
  probes for hours.
- C. Siebenmann, "The external delivery delays we see on our central mail machine",
  University of Toronto, 2018 (utcc.utoronto.ca/~cks): of about 136,000 successful SMTP
  deliveries in 30 days, only 31,000 took longer than one second.
- D. Lange, "Google GMail continues to own the email market, Microsoft is catching up",
  daniel-lange.com, 2018: 2.3 million US-centric addresses, Gmail 39 %, Microsoft 35 %,
  Yahoo 18 %, every other provider below 1 %.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from .case import Measured, case, measured_from

__all__ = ["PROVIDERS", "clear", "default_runs", "world_runs"]

# (domains, regions, rows/s) of a generated world: quick keeps the group near 5 s
# (about 1.5 s a world), full near 35 s (about 3 s a world) on the 2-core machine. The
# full world is docs/generate.md's 1,000 domains, over all ten regions.
QUICK_WORLD = (100, 4, 5.0)
FULL_WORLD = (1000, 10, 10.0)
HOUR, DRAIN = 3600.0, 1800.0

# A provider's domains in the generated world (docs/generate.md, Big providers).
PROVIDERS = {
    "Gmail": ("gmail.com", "googlemail.com"),
    "Microsoft": ("outlook.com", "hotmail.com", "live.com", "msn.com"),
    "Yahoo": ("yahoo.com", "aol.com", "ymail.com"),
}

_DEFAULT: dict[tuple[int, int], pd.DataFrame] = {}
_WORLD: dict[tuple[bool, int, int], pd.DataFrame] = {}


def clear() -> None:
    """Forget the kept runs."""
    _DEFAULT.clear()
    _WORLD.clear()


def _replications(quick: bool) -> int:
    return 3 if quick else 10


def default_runs(quick: bool, seed: int) -> list[pd.DataFrame]:
    """The messages tables of the default scenario's replications (kept: the rows of
    this world read the same runs)."""
    import sim

    scenario = sim.load_scenario()
    out = []
    for k in range(_replications(quick)):
        key = (seed, k)
        if key not in _DEFAULT:
            _DEFAULT[key] = sim.run(scenario, seed=seed * 1000 + k).messages
        out.append(_DEFAULT[key])
    return out


def world_runs(quick: bool, seed: int) -> list[pd.DataFrame]:
    """The messages tables of the provider-share world's replications: each a world
    generated with its own seed and run with it (kept, as :func:`default_runs`)."""
    import sim

    domains, regions, rate = QUICK_WORLD if quick else FULL_WORLD
    out = []
    for k in range(_replications(quick)):
        key = (quick, seed, k)
        if key not in _WORLD:
            s = seed * 1000 + k
            data = sim.generate.internet(domains=domains, seed=s, regions=regions, rate=rate, duration=HOUR,
                                         drain=DRAIN)
            _WORLD[key] = sim.run(sim.parse_scenario(data), seed=s).messages
        out.append(_WORLD[key])
    return out


SPAM_DOMAIN = "spam.example"  # the generated botnet's sender domain (sim/config/generate.py)


def _legitimate(m: pd.DataFrame) -> pd.DataFrame:
    """Every row but spam and the bounce notices of spam (to its sender domain, which
    takes no mail back)."""
    return m[(m["kind"] != "spam") & (m["recipient_domain"] != SPAM_DOMAIN)]


def _delays(m: pd.DataFrame) -> pd.Series:
    d = _legitimate(m)
    d = d[d["status"] == "delivered"]
    return d["delivered"] - d["created"]


AFERGAN = "Afergan & Beverly, ACM CCR 35(1), 2005"
# The paper gives orders, not figures: these stand in for its ranges.
SECONDS_TO_MINUTES = AFERGAN + ": seconds to minutes (60 s stands in for the range)"
HOURS_TO_DAYS = AFERGAN + ": a tail of hours to days (1 h stands in for the range)"
MOORS = "Moors, UNSW 2004 (Datamation, 2004)"
LANGE = "Lange, daniel-lange.com 2018 (2.3 M addresses)"
SIEBENMANN = "Siebenmann, U. Toronto 2018 (136,000 SMTP deliveries)"

WORLD = "provider-share world"
DEFAULT = "default scenario"


def _compare(world: str, name: str, unit: str, reference: float, source: str, note: str,
             figure: Callable[[pd.DataFrame], float]) -> None:
    runs = world_runs if world == WORLD else default_runs

    def measure(quick: bool, seed: int) -> Measured:
        return measured_from([figure(m) for m in runs(quick, seed)])

    case("reality", f"{world}: {name}", unit, reference, source, 0.0, scored=False, note=note)(measure)


def _never_delivered(m: pd.DataFrame) -> float:
    return float((_legitimate(m)["status"] != "delivered").mean())


def _lost(m: pd.DataFrame) -> float:
    return float((_legitimate(m)["status"] == "lost").mean())


def _p99_delay(m: pd.DataFrame) -> float:
    return float(_delays(m).quantile(0.99))


_compare(
    WORLD, "median delivery delay (created -> delivered)", "s", 60.0, SECONDS_TO_MINUTES,
    "The paper timed bounces of probes to non-existent addresses (a round trip through the receiver's "
    "queue, not a delivery) and gives an order (most within seconds to minutes), not a median; 60 s "
    "stands for it. The model's median is one to two seconds: the dialogues' round trips across regions, "
    "the scan and the hand-off to the store, with no greylisting, no filter backlog and no slow links.",
    lambda m: float(_delays(m).median()),
)
_compare(
    WORLD, "share of deliveries taking longer than 1 s", "share", 31_000 / 136_000,
    SIEBENMANN + ": 31,000 took over 1 s",
    "Siebenmann timed one university's outgoing SMTP deliveries (its queue to the next server); the "
    "model times created to delivered in a mailbox: submission, relay across regions, scan and "
    "hand-off, so more of its mail passes one second. Neither is fitted to the other.",
    lambda m: float((_delays(m) > 1.0).mean()),
)
_compare(
    WORLD, "99th percentile of delivery delay", "s", 3600.0, HOURS_TO_DAYS,
    "The generated world has no faults: no outage, no throttling, no greylisting. Its tail is the ESP's "
    "campaign, released at 300 messages/s and queued at the ESP and the receivers' scanners (seconds, "
    "first attempt): the model's floor, not the measured tail of hours to days, which comes from "
    "outages and misconfigured servers. See the default scenario's row.",
    _p99_delay,
)
_compare(
    WORLD, "share of messages never delivered (lost or bounced)", "share", 0.0157, MOORS + ": 1.57 %",
    "An input seen through the model: the generator sends 0.5 % of each domain's mail to people who do "
    "not exist (550 5.1.1); beyond them only a few messages too large for their receiver bounce "
    "(552 5.3.4), as nothing else fails in this world. "
    "Moors sent between working accounts, so his 1.57 % is loss to faults, which this world lacks.",
    _never_delivered,
)
_compare(
    WORLD, "share of messages lost silently", "share", 0.005, MOORS + ": about a third of 1.57 %",
    "Zero by construction: the generated world discards nothing and loses no device, so every message "
    "is delivered or bounced with notice. The measured silent loss has no cause in this world.",
    _lost,
)


def _share_to(domains: tuple[str, ...]) -> Callable[[pd.DataFrame], float]:
    """The share of person-to-person rows addressed to any of ``domains``."""
    return lambda m: float(m.loc[m["kind"] == "person", "recipient_domain"].isin(domains).mean())


for _provider, _share in (("Gmail", 0.39), ("Microsoft", 0.35), ("Yahoo", 0.18)):
    _compare(
        WORLD, f"share of person-to-person mail to {_provider}", "share", _share, f"{LANGE}: {_share:.0%}",
        "An input seen through the model: the generator gives the provider this share of the people, and "
        "people write to their 20 regular correspondents (Zipf) and, in companies, 30 % to colleagues, so "
        "the share of mail drifts from the share of addresses. The sample counts addresses, not mail.",
        _share_to(PROVIDERS[_provider]),
    )


_compare(
    DEFAULT, "99th percentile of delivery delay", "s", 3600.0, HOURS_TO_DAYS,
    "The paper timed bounces of probes to non-existent addresses, not deliveries. The default world's "
    "tail is the mail Yahoo's MX hosts throttle and acme's outage defers, retried on the senders' "
    "schedules (minutes); an hour's run and a 30-minute drain cannot show a tail of days.",
    _p99_delay,
)
_compare(
    DEFAULT, "share of messages never delivered (lost or bounced)", "share", 0.0157, MOORS + ": 1.57 %",
    "Moors counted test messages between working accounts; here bounces to mistyped or unknown "
    "recipients and too large messages count too. Silent loss is the content filter's discard_rate "
    "and lost devices: inputs, not outcomes of faults.",
    _never_delivered,
)
_compare(
    DEFAULT, "share of messages lost silently", "share", 0.005, MOORS + ": about a third of 1.57 %",
    "Silent loss in the model comes from the scenario's discard_rate (an assumption, docs/sources.md), "
    "not from faults: the figure follows that input.",
    _lost,
)
