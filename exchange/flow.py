"""The ad request, top to bottom: the one path that must be fast.

``AdServer.begin`` takes the raw body: it decodes, validates and screens it, and either
answers at once (anonymous shopper, invalid traffic) or returns a ``Pending`` naming the
shopper whose state (``exchange/shoppers.py``) the caller reads in ONE Redis round trip
before ``finish``. Neither half awaits. Retrieval reads the in-memory index; the
shopper's signals (segments, purchases, frequency counts, exposures) and the store's
stock become a few numbers and short lists in the kernel's ``params``; one fused numba
call filters and clears the auction; each winning ad gets one signed token (shared by its
impression and click URLs, carrying the shopper for exposure memory), and the wins go to
the event log's write-behind queue.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol
from zoneinfo import ZoneInfo

import numpy as np

from auction.selection import (
    BIT_WORDS,
    OUT_COLS,
    P_EXCLUDE_PRODUCT,
    P_FATIGUE,
    P_INCREMENT,
    P_LOW_STOCK,
    P_MIN_EV,
    P_MIN_MATCH,
    P_MIN_QUALITY,
    P_N_BLOCK,
    P_N_EXTRA,
    P_N_MULT,
    P_N_PMARK,
    P_N_REPL,
    P_N_STORE,
    P_NOW_MS,
    P_QUERY_BITS0,
    P_QUERY_TOKENS,
    P_RESERVE,
    P_SEED,
    P_SEG0,
    P_SLOTS,
    P_STOCK_A,
    P_STOCK_B,
    P_TAIL,
    PARAMS_LEN,
    select_and_clear,
)
from exchange.adrequest import Ad, AdRequest, AdResponse, ProductCard, decoder, encoder
from exchange.complements import complements_of
from exchange.decoding import decode
from exchange.errors import ApiError, BadRequest
from exchange.events import Event, EventLog, WinEvent
from exchange.index import Index
from exchange.metrics import AdStats
from exchange.money import format_micros
from exchange.screening import PassAll, RateCheck, TrafficCheck, device_key
from exchange.settings import Placement
from exchange.shoppers import CAP_UNITS, EMPTY, ShopperState, ZoneClock
from exchange.stock import ONLINE, StockTable
from fraud.signature import KIND_SPONSORED_PRODUCT, MAX_SHOPPER, AdToken, TokenSigner, new_imp_id

_EMPTY = np.zeros(0, dtype=np.int64)
TAIL_MAX = 16_384  # params entries for the shopper's lists; longer lists are cut
DAY_S = 86_400
_UTC = ZoneInfo("UTC")
QUERY_MAX = 80  # characters of a normalised search query kept on a win event
_NO_BITS = (0,) * BIT_WORDS


class Pacing(Protocol):
    """What the hot path tells pacing (``pacing.pacer.Pacer``): memory only."""

    def served(self, campaign_id: int, price_micros: int) -> None: ...

    def count_auction(self) -> None: ...


@dataclass(frozen=True, slots=True)
class SignalSettings:
    """How the shopper's signals weigh in (settings: docs/signals.md)."""

    low_stock_threshold: int = 3   # fewer units than this: quality scaled by qty / threshold
    fatigue_k: int = 5             # quality x k / (k + impressions already seen)
    zone: ZoneInfo = _UTC  # frequency-cap hours, days and weeks


@dataclass(slots=True)
class Pending:
    """An ad request waiting for its shopper's state."""

    req: AdRequest
    placement: Placement
    request_id: str
    base_url: str
    shopper: str
    started: float


class NoPacing:
    def served(self, campaign_id: int, price_micros: int) -> None:
        pass

    def count_auction(self) -> None:
        pass


def _shopper_of(req: AdRequest) -> str:
    """The id the shopper's state is kept under: loyalty id first (it joins in-store
    purchases), else the storefront's shopper id; "" when anonymous or too long to carry."""
    s = req.shopper
    if s is None:
        return ""
    sid = s.loyalty_id or s.id or ""
    return sid if len(sid.encode()) <= MAX_SHOPPER else ""


def _check_page(req: AdRequest) -> None:
    """What each page type needs to be served: a 400 naming the field, for everyone."""
    page = req.page
    if page.type == "in_store" and not req.store_id:
        raise BadRequest("an in-store screen needs its store_id", field="store_id")
    if page.type == "search" and (not page.query or not page.query.strip()):
        raise BadRequest("a search page needs a query", field="page.query")
    if page.type == "product" and not page.sku:
        raise BadRequest("a product page needs a sku", field="page.sku")
    if page.type == "category" and not page.category:
        raise BadRequest("a category page needs a category", field="page.category")


class AdServer:
    def __init__(
        self,
        *,
        index: Callable[[], Index],
        placements: dict[str, Placement],
        signer: TokenSigner,
        events: EventLog,
        stats: AdStats,
        min_increment_micros: int,
        max_slots: int,
        givt: TrafficCheck | None = None,
        limiter: RateCheck | None = None,
        complements: dict[str, tuple[str, ...]] | None = None,
        pacer: Pacing | None = None,
        stock: Callable[[], StockTable] | None = None,
        signals: SignalSettings | None = None,
    ) -> None:
        self._index = index
        self._stock = stock or (lambda: _NO_STOCK_TABLE)
        self._signals = signals or SignalSettings()
        self._clock = ZoneClock(self._signals.zone)
        self._min_quality = {pid: p.min_quality_ppm for pid, p in placements.items()}
        self._min_ev = {pid: p.min_expected_value_micros for pid, p in placements.items()}
        self._placements = placements
        self._placement_no = {pid: i for i, pid in enumerate(placements)}
        self._floor = {pid: p.floor_micros for pid, p in placements.items()}
        self._signer = signer
        self._events = events
        self._stats = stats
        self._increment = min_increment_micros
        self._max_slots = max_slots
        self._params = np.zeros(PARAMS_LEN + TAIL_MAX, dtype=np.int64)
        self._out = np.zeros(
            (max(max_slots, max(p.slots for p in placements.values())), OUT_COLS),
            dtype=np.int64)
        self._givt: TrafficCheck = givt or PassAll()
        self._limiter: RateCheck = limiter or PassAll()
        self._complements = complements or {}
        self._pacer: Pacing = pacer or NoPacing()
        self._page_cands: dict[int, tuple[np.ndarray, int]] = {}  # product id -> page rows
        self._cards: dict[int, ProductCard] = {}
        self._cards_version = -1

    def serve(self, body: bytes, base_url: str, ua: str | None = None, ip: str | None = None,
              purpose: str | None = None, state: ShopperState | None = None) -> bytes:
        """The whole request with the shopper's state already known (tests, tools)."""
        pending = self.begin(body, base_url, ua, ip, purpose)
        if isinstance(pending, bytes):
            return pending
        return self.finish(pending, state or EMPTY)

    def begin(self, body: bytes, base_url: str, ua: str | None = None, ip: str | None = None,
              purpose: str | None = None) -> bytes | Pending:
        """The response, or a ``Pending`` when the auction needs the shopper's state.
        ``ua``/``ip``/``purpose``: what the HTTP request itself carried (User-Agent, client
        address, prefetch headers); the body's ``device`` overrides the first two, as
        DESIGN.md says."""
        started = time.perf_counter()
        placement_id = "?"
        try:
            req = decode(body, decoder)
            placement = self._placements.get(req.placement)
            if placement is None:
                raise BadRequest(f"unknown placement {req.placement!r}", field="placement",
                                 code="unknown_placement")
            placement_id = placement.id
            if req.page.type != placement.page_type:
                raise BadRequest(
                    f"placement {placement.id!r} is for {placement.page_type} pages",
                    field="page.type",
                )
            _check_page(req)
            request_id = req.request_id or new_imp_id().hex()
            reason = self._screen(req, ua, ip, purpose)
            if reason:
                self._invalid(req, placement, request_id, reason)
                ads: list[Ad] = []
            else:
                shopper = _shopper_of(req)
                if shopper and placement.kind == "sponsored_product":
                    return Pending(req, placement, request_id, base_url, shopper, started)
                ads = self._auction(req, placement, request_id, base_url, EMPTY, "")
            out = encoder.encode(AdResponse(request_id=request_id, ads=ads))
        except ApiError:
            self._stats.request(placement_id, "rejected", time.perf_counter() - started)
            raise
        self._stats.request(placement_id, "ok", time.perf_counter() - started)
        return out

    def finish(self, p: Pending, state: ShopperState | None) -> bytes:
        """The response once the shopper's state is read; ``None``: it could not be
        (Redis slow or down), and the answer is no ad rather than one that may break a
        frequency cap, a suppression or an exclusion."""
        if state is None:
            self._stats.degraded(p.placement.id)
            ads: list[Ad] = []
        else:
            ads = self._auction(p.req, p.placement, p.request_id, p.base_url, state,
                                p.shopper)
        out = encoder.encode(AdResponse(request_id=p.request_id, ads=ads))
        self._stats.request(p.placement.id, "ok", time.perf_counter() - p.started)
        return out

    def _screen(self, req: AdRequest, ua: str | None, ip: str | None,
                purpose: str | None) -> str:
        """"" for valid traffic, else why not: before any auction work is done."""
        device = req.device
        device_id = None
        if device is not None:
            ua = device.ua if device.ua is not None else ua
            ip = device.ip or ip
            device_id = device.id
        reason = self._givt.check(ua, ip, purpose)
        if reason:
            return reason
        hit = self._limiter.hit
        if ip and (reason := hit("ad_request", "ip", ip)):
            return reason
        shopper = req.shopper
        sid = (shopper.loyalty_id or shopper.id) if shopper is not None else None
        if sid and (reason := hit("ad_request", "shopper", sid)):
            return reason
        return hit("ad_request", "device", device_key(device_id, ua, ip))

    def _invalid(self, req: AdRequest, placement: Placement, request_id: str,
                 reason: str) -> None:
        self._stats.invalid(placement.id, reason)
        shopper = req.shopper
        self._events.add(Event(
            id=f"{new_imp_id().hex()}:x", type="invalid", of="ad_request", reason=reason,
            ts=time.time_ns() // 1_000_000, request_id=request_id, placement=placement.id,
            shopper_id=(shopper.loyalty_id or shopper.id or "") if shopper else "",
        ))

    def _auction(self, req: AdRequest, placement: Placement, request_id: str,
                 base_url: str, state: ShopperState, shopper: str) -> list[Ad]:
        index = self._index()
        page = req.page
        params = self._params
        exclude = -1
        term = ""  # search pages: the query's search term, for reports
        n_tokens = n_extra = 0
        bits = _NO_BITS
        cand = _EMPTY
        if placement.kind != "sponsored_product":
            pass  # display creatives and DSPs are not wired in yet: no candidates
        elif page.type == "search":
            found = index.query_candidates(page.query or "")  # checked by _check_page
            cand, n_tokens = found.cand, found.n_tokens
            bits, n_extra = found.bits, found.n_extra
            term = found.term[:QUERY_MAX]
        elif page.type == "product":
            pid = index.sku_to_pid.get(page.sku or "")
            if pid is not None:
                exclude = pid
                cand, n_tokens = self._product_page(index, pid)
        elif page.type in ("category", "in_store"):  # in store: the screen's aisle
            cand = index.category_candidates(page.category or "")
        n_slots = min(req.slots or placement.slots, placement.slots, self._max_slots)
        n = 0
        self._pacer.count_auction()
        if len(cand):
            params[P_NOW_MS] = time.time_ns() // 1_000_000
            params[P_RESERVE] = self._floor[placement.id]
            params[P_INCREMENT] = self._increment
            params[P_SLOTS] = n_slots
            params[P_SEED] = zlib.crc32(request_id.encode())
            params[P_EXCLUDE_PRODUCT] = exclude
            params[P_QUERY_TOKENS] = n_tokens
            params[P_MIN_MATCH] = (n_tokens + 1) // 2
            params[P_QUERY_BITS0 : P_QUERY_BITS0 + BIT_WORDS] = bits
            params[P_N_EXTRA] = n_extra
            stock = self._stock()
            self._signal_params(index, stock, req, placement, state, params)
            n = select_and_clear(cand, index.rows, index.campaigns, params, index.scratch,
                                 self._out, stock.array)
        self._stats.auction(placement.id, n)
        if not n:
            return []
        return self._ads(index, req, placement, request_id, base_url, n, term, shopper)

    def _signal_params(self, index: Index, stock: StockTable, req: AdRequest,
                       placement: Placement, state: ShopperState, params: np.ndarray) -> None:
        """The shopper's and the store's signals as the kernel reads them (see
        ``auction.selection``): masks, stock columns, thresholds and the tail lists."""
        sig = self._signals
        store = req.store_id
        if req.page.type == "in_store":  # the screen's own shelf, nothing else
            a, b = stock.column(store), -1
        else:  # online, or pick-up in the shopper's store
            a, b = stock.column(ONLINE), stock.column(store)
        params[P_STOCK_A] = a
        params[P_STOCK_B] = b
        params[P_LOW_STOCK] = sig.low_stock_threshold
        params[P_FATIGUE] = sig.fatigue_k
        params[P_MIN_QUALITY] = self._min_quality[placement.id]
        params[P_MIN_EV] = self._min_ev[placement.id]
        params[P_SEG0 : P_SEG0 + BIT_WORDS] = (index.segment_words(state.segments)
                                               if state.segments else _NO_BITS)
        now_s = int(params[P_NOW_MS]) // 1000
        end = len(params)
        pos = P_TAIL
        # Products the shopper bought or was shown: (pid, days since purchase + 1 | imps).
        groups: list[int] = []
        if state.purchases or state.exposures:
            marks: dict[int, int] = {}
            repl_days, repl_group = index.replenishment.days, index.repl_group
            for pid, ts in state.purchases.items():
                days = max(0, (now_s - ts) // DAY_S)
                marks[pid] = min(days + 1, 0xFFFF)
                g = repl_group.get(pid)
                if g is not None and days < repl_days[g]:
                    groups.append(g)
            for pid, imps in state.exposures.items():
                marks[pid] = marks.get(pid, 0) | (min(imps, 0x7FFF) << 16)
            flat = [v for item in marks.items() for v in item][: end - pos]
            params[pos : pos + len(flat)] = flat
            pos += len(flat)
            params[P_N_PMARK] = len(flat) // 2
        else:
            params[P_N_PMARK] = 0
        blocked: list[int] = []
        if state.caps:
            slot_of, records, clock = index.campaign_slot, index.campaign_records, self._clock
            for cid, (bucket, count) in state.caps.items():
                slot = slot_of.get(cid)
                record = records[slot] if slot is not None else None
                cap = record.frequency_cap if record is not None else None
                if cap is not None and count >= cap.impressions and \
                        bucket == clock.bucket(now_s, CAP_UNITS[cap.per]):
                    blocked.append(slot)  # type: ignore[arg-type]
        pos = _put(params, pos, P_N_BLOCK, blocked)
        pos = _put(params, pos, P_N_STORE, index.store_array(store) if store else _EMPTY)
        mults = [index.multiplier_array(seg) for seg in state.segments]
        mults = [m for m in mults if len(m)]
        pos = _put(params, pos, P_N_MULT,
                  (mults[0] if len(mults) == 1 else np.concatenate(mults)) if mults else _EMPTY,
                  width=2)
        _put(params, pos, P_N_REPL, groups)

    def _product_page(self, index: Index, pid: int) -> tuple[np.ndarray, int]:
        """Rows for a product's page and the "token count" to clear them with.

        Own category first, then complementary categories. The kernel's match counting
        does the weighting: the own category's rows are listed twice and the page is said
        to have two tokens, so they keep their full quality, while complementary rows
        (listed once) compete at a quarter of theirs. Without complements: one list, no
        relevance weighting (0 tokens).
        """
        self._check_version(index)
        cached = self._page_cands.get(pid)
        if cached is None:
            own = index.category_candidates(index.product_category(pid) or "")
            # Complements only compete at a discount: their best live rows are enough.
            extra = [index.category_block(c) for c in
                     complements_of(index.product_categories(pid), self._complements)]
            extra = [a for a in extra if len(a)]
            cached = (np.concatenate([own, own, *extra]), 2) if extra else (own, 0)
            if len(self._page_cands) > 100_000:
                self._page_cands.clear()
            self._page_cands[pid] = cached
        return cached

    def _check_version(self, index: Index) -> None:
        if self._cards_version != index.version:
            self._cards.clear()
            self._page_cands.clear()
            self._cards_version = index.version

    def _card(self, index: Index, pid: int) -> ProductCard:
        self._check_version(index)
        card = self._cards.get(pid)
        if card is None:
            p = index.products[pid]
            card = self._cards[pid] = ProductCard(
                title=p.title, brand=p.brand, price=format_micros(p.price_micros),
                image_url=p.image_url,
            )
        return card

    def _ads(self, index: Index, req: AdRequest, placement: Placement, request_id: str,
             base_url: str, n: int, term: str, shopper: str) -> list[Ad]:
        now_ms = time.time_ns() // 1_000_000
        now_s = now_ms // 1000
        expires = now_s + self._signer.ttl_s
        placement_no = self._placement_no[placement.id]
        sign = self._signer.sign
        served = self._pacer.served
        wins: list[WinEvent] = []
        # One conversion for all winners: (row, price, campaign slot, product, campaign id).
        winners = self._out[:n].tolist()
        products, public_ids = index.products, index.campaign_public_ids
        ads: list[Ad] = []
        for slot in range(n):
            _, price, camp_slot, pid, campaign_id = winners[slot]
            imp_id = new_imp_id()
            token = sign(AdToken(imp_id, campaign_id, pid, price, slot, placement_no,
                                 KIND_SPONSORED_PRODUCT, now_s, expires, shopper))
            served(campaign_id, price)
            sku = products[pid].sku
            ads.append(Ad(
                slot=slot,
                kind="sponsored_product",
                campaign_id=public_ids[camp_slot],
                sku=sku,
                product=self._card(index, pid),
                impression_url=f"{base_url}/t/i/{token}",
                click_url=f"{base_url}/t/c/{token}",
            ))
            wins.append(WinEvent(imp_id.hex(), now_ms, request_id, placement.id, campaign_id,
                                 sku, price, slot, shopper, term))
        self._events.add_wins(wins)
        return ads


def _put(params: np.ndarray, pos: int, count_at: int, values: list[int] | np.ndarray,
         width: int = 1) -> int:
    """Write one tail list at ``pos`` (cut to the room left, whole entries only), set its
    count, and return where the next list starts."""
    n = min(len(values), (len(params) - pos) // width * width)
    if n:
        params[pos : pos + n] = values[:n]
    params[count_at] = n // width
    return pos + n


_NO_STOCK_TABLE = StockTable(1)
