"""The generated Internet (sim.generate, `mailflow generate`, `generate:` blocks) and
topologies read from GraphML / node-link JSON."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import networkx as nx
import pytest
import yaml

import sim
from sim.config import ScenarioError, ScenarioWarning, load_scenario, parse_scenario
from sim.config.generate import PROVIDERS, GenerateSpec, campaign_times, to_yaml, world
from sim.config.regions import REGIONS
from sim.faces.cli import main

ROOT = Path(__file__).resolve().parent.parent


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_:
        main(list(args))
    got = capsys.readouterr()
    return int(exit_.value.code or 0), got.out, got.err


def users_by_domain(data: dict) -> dict[str, int]:
    """People by mail domain (the spammers' sender domain has none and is left out)."""
    return {d["name"]: d["users"] for d in data["domains"] if d["users"]}


# --- the world -------------------------------------------------------------------


@pytest.mark.parametrize("domains", [1, 2, 3, 4, 19, 20, 300])
def test_generated_worlds_are_valid_and_every_node_has_a_known_region(domains: int) -> None:
    data = sim.generate.internet(domains=domains, seed=3, regions=3)
    sc = parse_scenario(data)
    # The N mail domains, and the spammers' sender domain (no people).
    assert len(sc.domains) == domains + 1 and [d.name for d in sc.domains if not d.users] == ["spam.example"]
    names = {r.name for r in REGIONS[:3]}
    assert {n.region for n in sc.topology.nodes} <= names
    assert all(n.region is not None for n in sc.topology.nodes)


def test_same_seed_same_bytes_other_seed_other_world() -> None:
    a = to_yaml(world(GenerateSpec(domains=500, seed=11)))
    assert a == to_yaml(world(GenerateSpec(domains=500, seed=11)))
    assert a != to_yaml(world(GenerateSpec(domains=500, seed=12)))


def test_users_by_provider_are_the_measured_shares_to_a_person() -> None:
    data = world(GenerateSpec(domains=2000, seed=1))
    users = users_by_domain(data)
    total = sum(users.values())
    assert total == 2000 * 1000  # the default: 1000 people a domain
    for p in PROVIDERS:
        mine = sum(users[name] for name, _ in p.domains)
        # Largest-remainder rounding: within one person of the share.
        assert abs(mine - p.share * total) <= 1, p.org
    # The tail's 8 %: Zipf by rank, so its biggest domain is the first ISP, and every
    # other provider stays below 1 % (as in the sample).
    tail = {n: u for n, u in users.items() if not any(n == d for p in PROVIDERS for d, _ in p.domains)}
    assert abs(sum(tail.values()) - 0.08 * total) <= 1
    assert max(tail, key=tail.__getitem__) == "isp1.example"
    assert max(tail.values()) < 0.01 * total


def test_a_world_without_a_tail_renormalises_the_shares() -> None:
    users = users_by_domain(world(GenerateSpec(domains=3, users=920)))
    # 39 : 35 : 18 of 920 people.
    assert users == {"gmail.com": 390, "outlook.com": 350, "yahoo.com": 180}


def test_a_providers_domains_share_its_hosts() -> None:
    data = world(GenerateSpec(domains=50))
    doms = {d["name"]: d for d in data["domains"]}
    gmail, googlemail = doms["gmail.com"], doms["googlemail.com"]
    assert gmail["mx"] == googlemail["mx"]
    assert [m["preference"] for m in gmail["mx"]] == [5, 10, 20, 30, 40]
    assert gmail["mailbox"] == googlemail["mailbox"] == "gmail-store"
    assert doms["yahoo.com"]["mx_ttl"] == 1800
    # One resolver per provider, shared by its MTA.
    mta = next(n for n in data["topology"]["nodes"] if n["id"] == "gmail-mta")
    assert mta["resolver"] == "gmail-dns"


def test_companies_are_hosted_or_run_their_own_server_some_with_a_backup_mx() -> None:
    data = world(GenerateSpec(domains=3000, seed=5))
    kinds = {n["id"]: n["kind"] for n in data["topology"]["nodes"]}
    orgs = [d for d in data["domains"] if d["name"].startswith("org")]
    own = [d for d in orgs if d["mx"][0]["host"].startswith("org")]
    backed = [d for d in own if len(d["mx"]) == 2]
    on_gmail = [d for d in orgs if d["mx"][0]["host"] == "gmail-mx1"]
    at_isp = [d for d in orgs if d["mx"][0]["host"].startswith("isp")]
    assert len(own) + len(on_gmail) + len(at_isp) < len(orgs)  # the rest on outlook
    # Hosting shares 0.3 / 0.3 / 0.3 / 0.1 and 30 % of own servers backed up: binomial
    # counts, checked within 4 standard deviations.
    for got, n, p in [(len(own), len(orgs), 0.1), (len(on_gmail), len(orgs), 0.3), (len(backed), len(own), 0.3)]:
        assert abs(got - n * p) < 4 * math.sqrt(n * p * (1 - p)), (got, n, p)
    for d in backed:
        assert d["mx"][0]["preference"] < d["mx"][1]["preference"]
        backup = d["mx"][1]["host"]
        # The ISP's backup MX is a relay (it holds the mail, it never writes to the
        # company's store), one per ISP, asking the ISP's resolver.
        assert backup.startswith("isp") and backup.endswith("-backup-mx") and kinds[backup] == "relay"
        assert d["mailbox"] == d["mx"][0]["host"].replace("-mx1", "-store")


def test_rates_add_up_to_the_asked_rate() -> None:
    spec = GenerateSpec(domains=400, rate=50, duration=86400, campaign_share=0.1, transactional_share=0.2,
                        spam_share=0.4)
    data = world(spec)
    by_kind: Counter[str] = Counter()
    for s in data["workload"]:
        # Rows a second: a person's message goes to recipients_per_message people.
        if "rate" in s:
            by_kind[s["kind"]] += s["rate"] * s.get("recipients_per_message", 1)
        else:
            by_kind[s["kind"]] += sum(b["count"] for b in s["batches"]) / spec.duration
    # 40 % of 50 rows/s is spam; of the 30 legitimate ones 70 % are people's, 20 %
    # transactional, 10 % campaigns.
    assert by_kind["spam"] == pytest.approx(20.0, rel=1e-6)
    assert by_kind["person"] == pytest.approx(21.0, rel=1e-6)
    assert by_kind["transactional"] == pytest.approx(6.0, rel=1e-6)
    # 259,200 campaign messages in two campaigns (09:00 and 17:00 UTC) of one ESP.
    assert by_kind["marketing"] == pytest.approx(3.0, rel=1e-6)
    campaigns = [s for s in data["workload"] if s["kind"] == "marketing"]
    assert [b["at"] for b in campaigns[0]["batches"]] == [9 * 3600, 17 * 3600]


def test_campaign_times() -> None:
    assert campaign_times(86400 * 2) == [32400, 61200, 118800, 147600]
    assert campaign_times(3600) == [1800]  # too short for 09:00: half-way


def test_inter_region_latency_follows_the_great_circle_by_hand() -> None:
    data = world(GenerateSpec(domains=5, regions=2))
    edge = next(e for e in data["topology"]["edges"] if {e["a"], e["b"]} == {"ix-us-east", "ix-eu-central"})
    # Ashburn (39.04 N, 77.49 W) to Frankfurt (50.11 N, 8.68 E), law of cosines:
    # cos c = sin 39.04 sin 50.11 + cos 39.04 cos 50.11 cos 86.17
    #       = 0.62986 * 0.76728 + 0.77671 * 0.64132 * 0.06680 = 0.51655
    # c = 1.02798 rad, times 6371.0 km = 6549.3 km; at 2/3 c (199,862 km/s) 32.77 ms,
    # plus 1 ms of routers.
    assert edge["latency"] == pytest.approx(0.03377, abs=2e-5)
    # Inside a region: at most the region's radius (1000 km) plus the routers.
    for e in data["topology"]["edges"]:
        if e["b"].startswith("ix-") and e["a"].endswith("-edge"):
            assert 0.001 <= e["latency"] <= 0.001 + 1000 / 199_861.64


def test_node_count_grows_linearly_and_stays_small() -> None:
    # The scale targets are measured on this world: well under a node per domain,
    # because small domains share their ISP's or a provider's hosts.
    small = len(world(GenerateSpec(domains=5000))["topology"]["nodes"])
    big = len(world(GenerateSpec(domains=20000))["topology"]["nodes"])
    assert big / 20000 < 0.5
    assert big / small == pytest.approx(4, rel=0.1)


def test_bad_parameters_name_the_key() -> None:
    with pytest.raises(ScenarioError, match=r"^generate\.regions: Input should be less than or equal to 10"):
        sim.generate.internet(regions=11)
    with pytest.raises(ScenarioError, match="users must be at least 20 per domain"):
        sim.generate.internet(domains=100, users=100)


# --- compact scenarios -------------------------------------------------------------


def test_compact_then_load_equals_expand_then_load(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    args = ["generate", "--domains", "120", "--seed", "4", "--regions", "3", "--rate", "5", "--duration", "2h"]
    assert cli(capsys, *args, "--out", str(tmp_path / "c.yaml"))[0] == 0
    assert cli(capsys, *args, "--expand", "--out", str(tmp_path / "e.yaml"))[0] == 0
    compact = (tmp_path / "c.yaml").read_text()
    assert "generate:" in compact and "topology" not in compact
    assert load_scenario(tmp_path / "c.yaml") == load_scenario(tmp_path / "e.yaml")
    # Same flags, same bytes.
    code, again, _ = cli(capsys, *args, "--expand")
    assert again == (tmp_path / "e.yaml").read_text()


def test_keys_beside_the_block_replace_or_add(tmp_path: Path) -> None:
    f = tmp_path / "s.yaml"
    f.write_text(
        "generate: {domains: 30, seed: 1}\n"
        "duration: 60\nseed: 9\nname: mine\n"
        "topology:\n  nodes:\n    - {id: gmail-mx1, kind: mx, max_connections: 7}\n"
        "    - {id: extra-mx, kind: mx}\n"
        "  edges:\n    - {a: extra-mx, b: ix-us-east, latency: 0.002}\n"
        "domains:\n  - {name: extra.example, users: 5, mx: [{host: extra-mx, preference: 1}], mailbox: gmail-store}\n"
    )
    # The campaign was scheduled by the block's duration (half-way through 3600 s):
    # a shorter top-level duration cuts it off, and says so.
    with pytest.warns(ScenarioWarning, match=r"workload\[campaigns-esp1\]\.batches: no batch is between"):
        sc = load_scenario(f)
    assert (sc.duration, sc.seed, sc.name) == (60, 9, "mine")
    nodes = {n.id: n for n in sc.topology.nodes}
    assert nodes["gmail-mx1"].max_connections == 7
    assert nodes["gmail-mx1"].region is None  # replaced whole, not merged key by key
    assert "extra-mx" in nodes
    assert sc.domains[-1].name == "extra.example" and len(sc.domains) == 32  # 30, spam.example, extra


def test_set_reaches_the_block_and_the_expanded_world(tmp_path: Path) -> None:
    f = tmp_path / "s.yaml"
    f.write_text("generate: {domains: 30}\n")
    sc = load_scenario(f, ["generate.domains=40", "topology.nodes[gmail-mx1].max_connections=3"])
    assert len(sc.domains) == 41  # and spam.example
    assert next(n for n in sc.topology.nodes if n.id == "gmail-mx1").max_connections == 3


@pytest.mark.parametrize(
    "text, overrides, line",
    [
        ("generate: {domains: 0}\n", [], "{f}: generate.domains: Input should be greater than or equal to 1 (got 0)"),
        ("generate: {domains: 5, colour: red}\n", [], "{f}: generate.colour: unknown key"),
        ("generate: 5\n", [], "{f}: generate: a mapping of the generator's parameters (domains, seed, ...)"),
        ("generate: {domains: 5}\n", ["generate.rate=-1"], "--set (on {f}): generate.rate: Input should be greater than 0 (got -1)"),
        ("generate: {domains: 0}\n", ["generate.rate=2"], "{f}: generate.domains: Input should be greater than or equal to 1 (got 0)"),
        ("generate: {domains: 5}\nduration: -1\n", [], "{f}: duration: Input should be greater than or equal to 0.001 (got -1)"),
    ],
)
def test_errors_in_a_compact_file_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, overrides: list[str], line: str
) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    sets = [x for o in overrides for x in ("--set", o)]
    code, out, err = cli(capsys, "validate", str(f), *sets)
    assert code == 2 and out == ""
    assert err == f"mailflow: {line.format(f=f)}\n"


@pytest.mark.parametrize(
    "args, line",
    [
        (["--domains", "0"], "mailflow: --domains: Input should be greater than or equal to 1 (got 0)"),
        (["--regions", "11"], "mailflow: --regions: Input should be less than or equal to 10 (got 11)"),
        (["--duration", "2y"], "mailflow: --duration: unknown unit 'y' for seconds (use ms, s, m, h or d) (got '2y')"),
        (["--campaign-share", "0.9", "--transactional-share", "0.2"],
         "mailflow: --transactional-share, --campaign-share: transactional_share + campaign_share must be at most 1 (shares of legitimate mail)"),
        (["--domains", "20", "--users", "20"],
         "mailflow: --domains, --users: users must be at least 20 per domain (400 for 20 domains), "
         "so every domain of the tail has someone (got 20)"),
        (["--name", "a b"], "mailflow: --name: 'a b': use letters, digits, '.', '_' and '-' (it names the results folder)"),
        (["--out", "/nonexistent/dir/x.yaml"], "mailflow: --out /nonexistent/dir/x.yaml: cannot write: No such file or directory"),
    ],
)
def test_generate_with_bad_flags_is_one_line(capsys: pytest.CaptureFixture[str], args: list[str], line: str) -> None:
    code, out, err = cli(capsys, "generate", *args)
    assert code == 2 and out == ""
    assert err == line + "\n"


def test_generate_not_an_integer_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "generate", "--domains", "x")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "--domains" in err


# --- topology files ------------------------------------------------------------------


def _graph() -> nx.Graph:
    g = nx.Graph()
    g.add_node("dns", kind="resolver")
    g.add_node("mta", kind="mta", resolver="dns", workers=7)
    g.add_node("mx", kind="mx", processing="{dist: exponential, mean: 0.05}", region="eu-west")
    g.add_node("store", kind="mailbox")
    g.add_node("people", kind="client")
    g.add_edge("people", "mta", latency=0.01, bandwidth=2.5e6)
    g.add_edge("mta", "mx", latency=0.02, loss=0.001)
    g.add_edge("mta", "dns", latency=0.001)
    g.add_edge("mx", "store", latency=0.001)
    return g


REST = (
    "domains:\n  - {name: a.example, users: 10, outbound: mta, mx: [{host: mx, preference: 1}], mailbox: store}\n"
    "workload:\n  - {name: p, kind: person, client: people, domain: a.example, rate: 1}\n"
)


@pytest.mark.parametrize("fmt", ["graphml", "json"])
def test_a_topology_read_from_a_file_runs(tmp_path: Path, fmt: str) -> None:
    g = _graph()
    if fmt == "graphml":
        nx.write_graphml(g, tmp_path / "net.graphml")
    else:
        (tmp_path / "net.json").write_text(json.dumps(nx.node_link_data(g, edges="links")))
    (tmp_path / "s.yaml").write_text(f"duration: 100\ndrain: 100\ntopology: {{file: net.{fmt}}}\n" + REST)
    sc = load_scenario(tmp_path / "s.yaml")
    nodes = {n.id: n for n in sc.topology.nodes}
    assert nodes["mta"].workers == 7 and nodes["mx"].region == "eu-west"
    assert nodes["mx"].processing.dist == "exponential"
    link = next(e for e in sc.topology.edges if {e.a, e.b} == {"mta", "mx"})
    assert (link.latency, link.loss) == (0.02, 0.001)
    counts = sim.run(sc).summary().counts
    assert counts["delivered"] > 50


@pytest.mark.parametrize(
    "name, content, problem",
    [
        ("missing.graphml", None, "'missing.graphml': no such file"),
        ("net.txt", "x", "'net.txt': unknown format; use .graphml (GraphML) or .json (node-link JSON)"),
        ("net.graphml", "<graphml><oops></graphml>", "'net.graphml': not a GraphML file: mismatched tag"),
        ("net.json", "{", "'net.json': not a JSON file: Expecting property name enclosed in double quotes"),
        ("net.json", '{"nodes": [{"kind": "mx"}]}', "'net.json': nodes[0] has no 'id'"),
        ("net.json", '{"nodes": [], "links": [{"source": "a"}]}', "'net.json': links[0] needs 'source' and 'target'"),
    ],
)
def test_a_bad_topology_file_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, content: str | None, problem: str
) -> None:
    if content is not None:
        (tmp_path / name).write_text(content)
    f = tmp_path / "s.yaml"
    f.write_text(f"topology: {{file: {name}}}\n" + REST)
    code, _, err = cli(capsys, "validate", str(f))
    assert code == 2
    assert err.startswith(f"mailflow: {f}: topology.file: {problem}")
    assert err.count("\n") == 1


def test_a_bad_attribute_in_a_topology_file_names_the_node(tmp_path: Path) -> None:
    g = _graph()
    g.nodes["mta"]["workers"] = 0
    nx.write_graphml(g, tmp_path / "net.graphml")
    (tmp_path / "s.yaml").write_text("topology: {file: net.graphml}\n" + REST)
    with pytest.raises(ScenarioError, match=r"topology\.nodes\[mta\]\.workers: Input should be greater than 0"):
        load_scenario(tmp_path / "s.yaml")


# --- ready scenarios ---------------------------------------------------------------


@pytest.mark.parametrize("name", ["internet-1k.yaml", "internet-10k.yaml", "campaign-1m.yaml"])
def test_ready_scenarios_are_compact_and_load(name: str) -> None:
    path = ROOT / "topologies" / name
    assert "generate:" in path.read_text() and path.stat().st_size < 4000
    sc = load_scenario(path)
    assert len(sc.domains) >= 1000


def test_ready_scenarios_have_the_size_the_issue_asks() -> None:
    day = load_scenario(ROOT / "topologies" / "internet-10k.yaml")
    assert len(sc_domains := [d for d in day.domains if d.users]) == 10_000 and day.duration == 86400
    expected = sum(s.expected_messages(day.duration) for s in day.workload)
    assert expected == pytest.approx(1_000_000, rel=0.01)
    assert sc_domains
    campaign = load_scenario(ROOT / "topologies" / "campaign-1m.yaml")
    big = [s for s in campaign.workload if s.batches and sum(b.count for b in s.batches) == 1_000_000]
    assert len(big) == 1 and big[0].mta is not None and big[0].mta.startswith("esp")


def test_the_yaml_is_read_back_as_written() -> None:
    data = world(GenerateSpec(domains=40, seed=2))
    assert yaml.safe_load(to_yaml(data)) == data


def test_generated_people_send_on_their_own_clocks() -> None:
    data = world(GenerateSpec(domains=300, regions=3, seed=2))
    offsets = {r.name: r.utc_offset for r in REGIONS[:3]}
    region_of = {n["id"]: n["region"] for n in data["topology"]["nodes"]}
    domains = {d["name"]: d for d in data["domains"]}
    people = [s for s in data["workload"] if s["kind"] == "person"]
    assert people and all(s["profile"] == "office" and s["recipients_per_message"] == 1.66 for s in people)
    for s in people:
        here = offsets[region_of[s["client"]]]
        # A provider's people: one source per region, on that region's clock; anyone
        # else: their domain's clock, which is their region's.
        clock = s.get("utc_offset", domains[s["domain"]].get("utc_offset", 0.0))
        assert clock == here, s["name"]
    assert {s.get("utc_offset") for s in people if s["domain"] == "gmail.com"} == set(offsets.values())
    apps = [s for s in data["workload"] if s["kind"] == "transactional"]
    assert apps and all(s["profile"] == "transactional" for s in apps)
