"""The market as ``pictor job`` sees it: offers from adverts, a price proposal, stall reasons.

The decisions are :mod:`protocol.market.quote` and :mod:`protocol.market.stall`;
this module only turns the node's API JSON into their inputs and their
answers into sentences with the next command to run.
"""

from __future__ import annotations

from typing import Any

from node.cli.job_view import eth
from node.cli.names import short_peer
from protocol.market.quote import Offer, PriceProposal, ask_wei_per_frame
from protocol.market.stall import JobFacts, Stall, StallReason, why_stalled
from protocol.money import format_eth

NEEDS_NO_CHECKER = "none"


def offers(adverts: list[dict[str, Any]], ru_per_frame: int) -> list[Offer]:
    """Workers' offers from ``/v1/network`` adverts (asks per frame in integer wei)."""
    return [offer(advert, ru_per_frame) for advert in adverts if "worker" in advert["roles"]]


def offer(advert: dict[str, Any], ru_per_frame: int) -> Offer:
    ask_wei = ask_wei_per_frame(int(advert["price_wei_per_ru"]), ru_per_frame)
    builds = tuple(advert["renderer_builds"])
    return Offer(advert["peer_id"], ask_wei, builds, int(advert["free_slots"]),
                 int(advert["score_ru_per_hour"]))  # fmt: skip


def checkers(adverts: list[dict[str, Any]]) -> int:
    return sum(1 for advert in adverts if "checker" in advert["roles"])


def proposal_lines(p: PriceProposal, frames: int, proposed: bool) -> list[str]:
    how = "proposed: the cheapest asks covering the job + 10 %" if proposed else "--max-price"
    cheapest = f"; cheapest ask {eth(p.cheapest_ask_wei)} per frame" if p.cheapest_ask_wei else ""
    return [
        f"offers   {p.workers} worker(s) at or below your max price{cheapest}",
        f"max      {eth(p.max_price_wei_per_frame)} per frame ({how})",
        f"estimate at most {eth(p.estimate_wei)} for {frames} frame(s), checks included "
        "(pay-as-bid: cheaper bids cost less)",
        f"escrow   {eth(p.budget_wei)} held until the deadline; the unspent part is refunded",
    ]


def job_facts(job: dict[str, Any], has_chain: bool) -> JobFacts:
    states = list(job["frames"].values())
    return JobFacts(
        renderer_build=job["renderer_build"], max_price_wei_per_frame=job["max_price_wei_per_frame"],
        ru_per_frame=job["ru_per_frame"], deadline_ms=job["deadline_ms"], now_ms=job["now_ms"],
        frames_pending=states.count("pending"), frames_leased=states.count("leased"),
        frames_verifying=states.count("verifying"),
        needs_checker=job["assurance"] != NEEDS_NO_CHECKER, has_chain=has_chain,
    )  # fmt: skip


def stall_lines(job: dict[str, Any], adverts: list[dict[str, Any]], has_chain: bool) -> list[str]:
    """Why the job is not moving, in sentences; empty when it moves or is done."""
    if job["outcome"] is not None:
        return []
    facts = job_facts(job, has_chain)
    found = why_stalled(facts, offers(adverts, facts.ru_per_frame), checkers(adverts))
    return [sentence(r, facts, adverts) for r in found]


def sentence(reason: StallReason, job: JobFacts, adverts: list[dict[str, Any]]) -> str:
    kind = reason.kind
    if kind is Stall.NO_CHAIN:
        return ("this node has no chain configured: the job is not escrowed and workers are "
                "not paid (set chain_rpc_url and escrow_address in config.toml)")  # fmt: skip
    if kind is Stall.NO_CHECKER:
        return ("no checker advertises on the network: rendered frames wait for verification "
                "(start a node with --checker, or submit with --assurance none)")  # fmt: skip
    if kind is Stall.DEADLINE_PASSED:
        return "the deadline has passed: submit again with a longer --deadline"
    if kind is Stall.NO_WORKERS:
        return (f"no worker advert seen ({len(adverts)} advert(s) known): is the node connected? "
                "see `pictor peers` and `pictor network`")  # fmt: skip
    if kind is Stall.NO_BUILD:
        seen = ", ".join(reason.builds_seen) or "none"
        return f"no worker runs {job.renderer_build} (workers run: {seen})"
    if kind is Stall.PRICE_TOO_LOW:
        cheapest = reason.cheapest_ask_wei or 0
        return (f"every ask is above your max price {eth(job.max_price_wei_per_frame)} per frame: "
                f"cheapest ask {eth(cheapest)}; cancel and submit again with "
                f"--max-price {format_eth(cheapest).replace(' ETH', 'eth')}, or leave --max-price out "
                "for a proposal")  # fmt: skip
    if kind is Stall.DEADLINE_TOO_SHORT:
        return (f"deadline too short: {reason.left_s} s left, the fastest worker needs "
                f"{reason.frame_s} s a frame")  # fmt: skip
    return "every worker that would take it is busy: frames start as slots free up"


def worker_names(adverts: list[dict[str, Any]]) -> str:
    return ", ".join(short_peer(a["peer_id"]) for a in adverts if "worker" in a["roles"])
