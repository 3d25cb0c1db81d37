"""The in-memory auction index: what the hot path reads instead of Redis.

Rows are (campaign, product) bid lines in one int64 array laid out for the fused
kernel (``auction.selection``): campaign slot, product id, bid, base quality. Campaigns
are a second int64 array (live flag, schedule, public id, pacing gate). Retrieval is by posting
lists: match token -> rows, category path -> rows, cached as numpy arrays.

Changes are patches, not rebuilds: a changed campaign kills its old rows (campaign
slot -1; the kernel skips them) and appends new ones; only the posting lists the new
rows touch are re-materialised, lazily, on their next use. Dead rows are reclaimed by
an occasional full rebuild (``needs_compaction``) done off the event loop and swapped
in whole, so a request always sees one consistent snapshot.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from auction.selection import (
    BIT_WORDS,
    CAMP_COLS,
    CAMP_END_MS,
    CAMP_FLAGS,
    CAMP_GATE,
    CAMP_ID,
    CAMP_LIVE,
    CAMP_SEG_EXC0,
    CAMP_SEG_INC0,
    CAMP_START_MS,
    CAMP_SUPPRESS_DAYS,
    FLAG_NEEDS_SEGMENT,
    FLAG_NEEDS_STORE,
    GATE_OPEN,
    ROW_BID,
    ROW_BITS0,
    ROW_CAMPAIGN,
    ROW_COLS,
    ROW_PRODUCT,
    ROW_QUALITY,
    ROW_REPL,
    ROW_SUB,
)
from exchange.campaigns import CampaignRecord, public_id
from exchange.catalog import ProductRecord
from exchange.replenishment import Replenishment
from exchange.tokenizer import category_path, tokens

log = logging.getLogger("endcap.index")

_EMPTY = np.zeros(0, dtype=np.int64)
_QUERY_CACHE_MAX = 20_000
# Tokens on more rows than this may become "common": matched through a per-row bit
# instead of a posting list the kernel must walk (see auction.selection).
COMMON_MIN_ROWS = 512
COMMON_MAX = 64 * BIT_WORDS
# How many of a common token's best live rows stand in for its whole posting list.
COMMON_BLOCK = 128
# How many of a category's best live rows compete where it only competes at a discount
# (a product page's complements, at a quarter of their quality): a few slots' worth.
DISCOUNTED_BLOCK = 32
# Segments named in campaigns' targeting get one bit each in the kernel's masks.
MAX_SEGMENTS = 64 * BIT_WORDS


@dataclass(slots=True, frozen=True)
class Retrieval:
    """What the fused kernel needs for one query (cached per query string)."""

    cand: np.ndarray      # counted occurrences first, then ``n_extra`` candidate-only rows
    n_tokens: int
    bits: tuple[int, ...]  # the query's common-token bits, one int64 pattern per word
    n_extra: int
    term: str = ""  # the query's match tokens joined (``tokenizer.phrase``): its search term


@dataclass(slots=True)
class _Postings:
    """A growable posting list with a lazily rebuilt numpy view."""

    rows: list[int] = field(default_factory=list)
    array: np.ndarray | None = None

    def add(self, row: int) -> None:
        self.rows.append(row)
        self.array = None

    def view(self) -> np.ndarray:
        if self.array is None:
            self.array = np.asarray(self.rows, dtype=np.int64)
        return self.array


class Index:
    def __init__(self, row_capacity: int = 1024, campaign_capacity: int = 256,
                 replenishment: Replenishment | None = None) -> None:
        self.rows = np.zeros((row_capacity, ROW_COLS), dtype=np.int64)
        self.n_rows = 0
        self.dead_rows = 0
        self.campaigns = np.zeros((campaign_capacity, CAMP_COLS), dtype=np.int64)
        self.n_campaigns = 0
        # The kernel's scratch: one int32 per row, then one per product id (shopper marks).
        self.pid_capacity = 1024
        self.scratch = np.zeros(row_capacity + self.pid_capacity, dtype=np.int32)
        self.replenishment = replenishment or Replenishment()
        self.repl_group: dict[int, int] = {}  # pid -> replenishment group (listed only)
        # Shopper targeting: segment -> mask bit; store / segment -> campaign slots.
        self.segment_bit: dict[str, int] = {}
        self.store_slots: dict[str, list[int]] = {}
        self.segment_mults: dict[str, list[tuple[int, int]]] = {}  # -> (slot, permille)
        self._targets_of: dict[int, tuple[list[str], list[str]]] = {}  # slot -> stores, segs
        self._target_arrays: dict[str, np.ndarray] = {}  # the two above, as kernel input
        self.products: dict[int, ProductRecord] = {}
        self.sku_to_pid: dict[str, int] = {}
        self._product_tokens: dict[int, list[str]] = {}
        self._product_cats: dict[int, list[str]] = {}
        self.campaign_slot: dict[int, int] = {}
        self.campaign_records: list[CampaignRecord | None] = []
        self.campaign_public_ids: list[str] = []
        self._campaign_rows: list[list[int]] = []
        self._product_rows: dict[int, list[int]] = {}
        self._by_token: dict[str, _Postings] = {}
        self._by_category: dict[str, _Postings] = {}
        # Keyword match types: normalised phrase -> campaign slots (see ``_keywords``).
        self._phrase: dict[str, set[int]] = {}
        self._exact: dict[str, set[int]] = {}
        self._negative: dict[str, set[int]] = {}
        self._keywords_of: dict[int, list[tuple[dict[str, set[int]], str]]] = {}
        self._query_cache: dict[str, Retrieval] = {}
        self._common: dict[str, int] = {}       # token -> bit (0..127)
        self._blocks: dict[str, np.ndarray] = {}
        self.version = 0
        self.off_hours: set[int] = set()  # campaigns outside their dayparts right now

    # ---- building -------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        products: Iterable[ProductRecord],
        campaigns: Sequence[CampaignRecord],
        off_hours: Iterable[int] = (),
        replenishment: Replenishment | None = None,
    ) -> Index:
        n_bids = sum(len(c.bids) for c in campaigns)
        index = cls(row_capacity=max(1024, n_bids + n_bids // 4),
                    campaign_capacity=max(256, len(campaigns) + 64),
                    replenishment=replenishment)
        index.off_hours = set(off_hours)
        index.upsert_products(products)
        index._choose_common(campaigns)
        for record in campaigns:
            index.upsert_campaign(record)
        return index

    def _choose_common(self, campaigns: Sequence[CampaignRecord]) -> None:
        """The most frequent tokens over all bid rows get bits (fixed until a rebuild)."""
        df: dict[str, int] = {}
        for record in campaigns:
            kw = [t for k in record.keywords for t in tokens(k)]
            for b in record.bids:
                for tok in dict.fromkeys((*self._product_tokens.get(b.pid, ()), *kw)):
                    df[tok] = df.get(tok, 0) + 1
        ranked = sorted((n, t) for t, n in df.items() if n >= COMMON_MIN_ROWS)
        top = [t for _, t in reversed(ranked)][:COMMON_MAX]
        self._common = {t: bit for bit, t in enumerate(top)}

    def _grow_rows(self, need: int) -> None:
        cap = self.rows.shape[0]
        if need <= cap:
            return
        new_cap = max(need, cap * 2)
        rows = np.zeros((new_cap, ROW_COLS), dtype=np.int64)
        rows[: self.n_rows] = self.rows[: self.n_rows]
        self.rows = rows
        self.scratch = np.zeros(new_cap + self.pid_capacity, dtype=np.int32)

    def _fit_pid(self, pid: int) -> None:
        if pid < self.pid_capacity:
            return
        self.pid_capacity = max(pid + 1, self.pid_capacity * 2)
        self.scratch = np.zeros(self.rows.shape[0] + self.pid_capacity, dtype=np.int32)

    def _campaign_slot_for(self, campaign_id: int) -> int:
        slot = self.campaign_slot.get(campaign_id)
        if slot is not None:
            return slot
        slot = self.n_campaigns
        if slot >= self.campaigns.shape[0]:
            grown = np.zeros((self.campaigns.shape[0] * 2, CAMP_COLS), dtype=np.int64)
            grown[:slot] = self.campaigns[:slot]
            self.campaigns = grown
        self.n_campaigns += 1
        self.campaigns[slot, CAMP_GATE] = GATE_OPEN  # until pacing says otherwise
        self.campaign_slot[campaign_id] = slot
        self.campaign_records.append(None)
        self.campaign_public_ids.append(public_id(campaign_id))
        self._campaign_rows.append([])
        return slot

    # ---- patches --------------------------------------------------------------------

    def upsert_products(self, records: Iterable[ProductRecord]) -> None:
        touched: set[int] = set()
        for p in records:
            old = self.products.get(p.pid)
            self.products[p.pid] = p
            self.sku_to_pid[p.sku] = p.pid
            toks = tokens(" ".join((p.title, p.brand, p.category.split(">")[-1], *p.keywords)))
            cats = category_path(p.category)
            if old is not None and (
                toks != self._product_tokens.get(p.pid)
                or cats != self._product_cats.get(p.pid)
                or old.quality_ppm != p.quality_ppm
            ):
                touched.add(p.pid)
            self._product_tokens[p.pid] = toks
            self._product_cats[p.pid] = cats
            self._fit_pid(p.pid)
            group = self.replenishment.group_of(cats)
            if group >= 0:
                self.repl_group[p.pid] = group
            else:
                self.repl_group.pop(p.pid, None)
        # Rows of a product whose text or category changed are re-indexed.
        campaigns = {self.rows[r, ROW_CAMPAIGN] for pid in touched
                     for r in self._product_rows.get(pid, ())}
        for slot in campaigns:
            if slot >= 0 and (record := self.campaign_records[int(slot)]) is not None:
                self.upsert_campaign(record)
        self._changed()

    def upsert_campaign(self, record: CampaignRecord) -> None:
        slot = self._campaign_slot_for(record.id)
        self._kill_rows(slot)
        self.campaign_records[slot] = record
        camp = self.campaigns[slot]
        camp[CAMP_START_MS] = record.start_ms
        camp[CAMP_END_MS] = record.end_ms
        camp[CAMP_ID] = record.id
        camp[CAMP_LIVE] = self._is_live(record)
        self._register_keywords(slot, record)
        self._register_targets(slot, record)
        kw_tokens = [t for kw in record.keywords for t in tokens(kw)]
        target_cats = [c for cat in record.categories for c in category_path(cat)]
        bids = [b for b in record.bids if b.pid in self.products]
        self._grow_rows(self.n_rows + len(bids))
        new_rows = self._campaign_rows[slot]
        for b in bids:
            r = self.n_rows
            self.n_rows += 1
            product = self.products[b.pid]
            self.rows[r, ROW_CAMPAIGN] = slot
            self.rows[r, ROW_PRODUCT] = b.pid
            self.rows[r, ROW_BID] = b.bid_micros
            self.rows[r, ROW_QUALITY] = product.quality_ppm
            new_rows.append(r)
            self._product_rows.setdefault(b.pid, []).append(r)
            bits = 0
            for tok in dict.fromkeys((*self._product_tokens[b.pid], *kw_tokens)):
                self._postings(self._by_token, tok).add(r)
                bit = self._common.get(tok)
                if bit is not None:
                    bits |= 1 << bit
            self.rows[r, ROW_BITS0 : ROW_BITS0 + BIT_WORDS] = _words(bits)
            for cat in dict.fromkeys((*self._product_cats[b.pid], *target_cats)):
                self._postings(self._by_category, cat).add(r)
            self.rows[r, ROW_REPL] = self.repl_group.get(b.pid, -1)
        self._chain_substitutes(new_rows)
        self._changed()

    def _chain_substitutes(self, rows: list[int]) -> None:
        """Stock substitution: each of a campaign's rows points (``ROW_SUB``) to the
        campaign's next-best row of the same leaf category, best first, so a sold-out
        product hands its place to the brand's best similar product in stock."""
        by_leaf: dict[str, list[int]] = {}
        for r in rows:
            cats = self._product_cats.get(int(self.rows[r, ROW_PRODUCT]))
            by_leaf.setdefault(cats[-1] if cats else "", []).append(r)
        for group in by_leaf.values():
            group.sort(key=lambda r: (-int(self.rows[r, ROW_BID]) * int(self.rows[r, ROW_QUALITY]),
                                      r))
            for a, b in zip(group, [*group[1:], -1], strict=True):
                self.rows[a, ROW_SUB] = b

    def _segment_bits(self, names: list[str]) -> int:
        bits = 0
        for name in names:
            bit = self.segment_bit.get(name)
            if bit is None:
                if len(self.segment_bit) >= MAX_SEGMENTS:
                    log.error("more than %d targeted segments: %r is ignored until the "
                              "next rebuild", MAX_SEGMENTS, name)
                    continue
                bit = self.segment_bit[name] = len(self.segment_bit)
            bits |= 1 << bit
        return bits

    def _register_targets(self, slot: int, record: CampaignRecord) -> None:
        """Campaign columns and lookups for shopper targeting: suppression window, store
        and segment targeting, segment bid multipliers."""
        stores, segs = self._targets_of.pop(slot, ([], []))
        for store in stores:
            self.store_slots[store].remove(slot)
        for seg in segs:
            self.segment_mults[seg] = [m for m in self.segment_mults[seg] if m[0] != slot]
        camp = self.campaigns[slot]
        camp[CAMP_SUPPRESS_DAYS] = record.suppress_purchased_days
        camp[CAMP_FLAGS] = ((FLAG_NEEDS_STORE if record.stores else 0)
                            | (FLAG_NEEDS_SEGMENT if record.segments_include else 0))
        camp[CAMP_SEG_INC0 : CAMP_SEG_INC0 + BIT_WORDS] = _words(
            self._segment_bits(record.segments_include))
        camp[CAMP_SEG_EXC0 : CAMP_SEG_EXC0 + BIT_WORDS] = _words(
            self._segment_bits(record.segments_exclude))
        for store in record.stores:
            self.store_slots.setdefault(store, []).append(slot)
        for seg, permille in record.segment_multipliers.items():
            self.segment_mults.setdefault(seg, []).append((slot, permille))
        self._targets_of[slot] = (list(record.stores), list(record.segment_multipliers))
        self._target_arrays.clear()

    def store_array(self, store: str) -> np.ndarray:
        """Slots of the campaigns that target ``store`` (kernel tail list), cached."""
        slots = self.store_slots.get(store)
        if not slots:  # (unknown stores are not cached: requests name any store they like)
            return _EMPTY
        key = "s:" + store
        arr = self._target_arrays.get(key)
        if arr is None:
            arr = self._target_arrays[key] = np.array(slots, dtype=np.int64)
        return arr

    def multiplier_array(self, segment: str) -> np.ndarray:
        """(slot, permille) pairs, flattened, of the campaigns with a bid multiplier for
        ``segment`` (kernel tail list), cached."""
        pairs = self.segment_mults.get(segment)
        if not pairs:
            return _EMPTY
        key = "m:" + segment
        arr = self._target_arrays.get(key)
        if arr is None:
            arr = self._target_arrays[key] = np.array(
                [v for pair in pairs for v in pair], dtype=np.int64)
        return arr

    def segment_words(self, names: list[str]) -> tuple[int, ...]:
        """A shopper's segments as the kernel's mask words (untargeted ones drop out)."""
        bits = 0
        get = self.segment_bit.get
        for name in names:
            bit = get(name)
            if bit is not None:
                bits |= 1 << bit
        return _words(bits)

    def _register_keywords(self, slot: int, record: CampaignRecord) -> None:
        for table, ph in self._keywords_of.pop(slot, ()):
            slots = table.get(ph)
            if slots is not None:
                slots.discard(slot)
                if not slots:
                    del table[ph]
        mine = [(table, ph) for table, phrases in ((self._phrase, record.phrase_keywords),
                                                   (self._exact, record.exact_keywords),
                                                   (self._negative, record.negative_keywords))
                for ph in phrases]
        for table, ph in mine:
            table.setdefault(ph, set()).add(slot)
        if mine:
            self._keywords_of[slot] = mine

    def _keywords(self, toks: list[str], cand: np.ndarray, n_extra: int
                  ) -> tuple[np.ndarray, int]:
        """Apply phrase, exact and negative keywords to a query's candidates.

        A campaign whose phrase keyword is inside the query (as consecutive match tokens),
        or whose exact keyword is the query, gets all its rows as candidates with every
        query token matched (rows repeated ``len(toks)`` times in the counted part). A
        campaign with a negative keyword inside the query loses all its rows. Paid once
        per distinct query: the result is cached with the query.
        """
        if not (self._phrase or self._exact or self._negative) or not toks:
            return cand, n_extra
        grams = {" ".join(toks[i:j]) for i in range(len(toks))
                 for j in range(i + 1, min(len(toks), i + 8) + 1)}
        negative = set().union(*(self._negative.get(g, ()) for g in grams))
        matched = set().union(*(self._phrase.get(g, ()) for g in grams),
                              self._exact.get(" ".join(toks), ()))
        matched -= negative
        if not negative and not matched:
            return cand, n_extra
        counted, extra = cand[: len(cand) - n_extra], cand[len(cand) - n_extra:]
        if negative:
            banned = np.array(sorted(negative), dtype=np.int64)
            counted = counted[~np.isin(self.rows[counted, ROW_CAMPAIGN], banned)]
            extra = extra[~np.isin(self.rows[extra, ROW_CAMPAIGN], banned)]
        added = [r for slot in sorted(matched) for r in self._campaign_rows[slot]]
        if added:
            counted = np.concatenate([counted, np.tile(np.array(added, dtype=np.int64),
                                                       len(toks))])
        return np.concatenate([counted, extra]), len(extra)

    def _kill_rows(self, slot: int) -> None:
        old = self._campaign_rows[slot]
        if old:
            self.rows[old, ROW_CAMPAIGN] = -1
            for r in old:
                pid = int(self.rows[r, ROW_PRODUCT])
                rows = self._product_rows.get(pid)
                if rows is not None:
                    rows.remove(r)
            self.dead_rows += len(old)
            self._campaign_rows[slot] = []

    @staticmethod
    def _postings(table: dict[str, _Postings], key: str) -> _Postings:
        postings = table.get(key)
        if postings is None:
            postings = table[key] = _Postings()
        return postings

    def _is_live(self, record: CampaignRecord) -> int:
        """Live by status, kind and dayparting. Budgets and pacing act through the gate."""
        return int(record.status == "active" and record.kind == "sponsored_product"
                   and record.id not in self.off_hours)

    def set_in_daypart(self, campaign_id: int, running: bool) -> None:
        """The campaign's dayparting lets it run now (True) or not (its off hours)."""
        if running == (campaign_id not in self.off_hours):
            return
        if running:
            self.off_hours.discard(campaign_id)
        else:
            self.off_hours.add(campaign_id)
        slot = self.campaign_slot.get(campaign_id)
        if slot is not None and (record := self.campaign_records[slot]) is not None:
            self.campaigns[slot, CAMP_LIVE] = self._is_live(record)
            self._changed()  # common-token blocks hold live rows only

    def set_gate(self, campaign_id: int, gate: int) -> None:
        """The campaign's pacing gate (``CAMP_GATE``): 0 closed .. ``GATE_OPEN``."""
        slot = self.campaign_slot.get(campaign_id)
        if slot is not None:
            self.campaigns[slot, CAMP_GATE] = gate

    def _changed(self) -> None:
        self.version += 1
        self._query_cache.clear()
        self._blocks.clear()

    @property
    def needs_compaction(self) -> bool:
        return self.dead_rows > 50_000 and self.dead_rows > self.n_rows // 3

    # ---- retrieval (hot path) ---------------------------------------------------------

    def query_candidates(self, query: str) -> Retrieval:
        """Rows for a search query. Rare tokens contribute their whole posting list (a row
        repeats once per token: occurrences count matches); common tokens contribute bits
        and, when they alone could reach the minimum match, their best live rows."""
        cached = self._query_cache.get(query)
        if cached is not None:
            return cached
        toks = tokens(query)
        counted: list[np.ndarray] = []
        common: list[str] = []
        bits = 0
        for t in toks:
            bit = self._common.get(t)
            if bit is not None:
                common.append(t)
                bits |= 1 << bit
            elif (p := self._by_token.get(t)) is not None:
                counted.append(p.view())
        extra: list[np.ndarray] = []
        if common and len(common) >= (len(toks) + 1) // 2:
            extra = [self._block(t) for t in common]
        parts = counted + extra
        n_extra = sum(len(a) for a in extra)
        if not parts:
            cand = _EMPTY
        elif len(parts) == 1:
            cand = parts[0]
        else:
            cand = np.concatenate(parts)
        cand, n_extra = self._keywords(toks, cand, n_extra)
        found = Retrieval(cand, len(toks), _words(bits), n_extra, " ".join(toks))
        if len(self._query_cache) >= _QUERY_CACHE_MAX:
            self._query_cache.clear()
        self._query_cache[query] = found
        return found

    def _block(self, token: str) -> np.ndarray:
        """The ``COMMON_BLOCK`` best-scoring live rows of a common token."""
        block = self._blocks.get(token)
        if block is None:
            block = self._blocks[token] = self._best_live(self._by_token[token].view(),
                                                          COMMON_BLOCK)
        return block

    def category_block(self, category: str) -> np.ndarray:
        """The ``DISCOUNTED_BLOCK`` best-scoring live rows of a category (any level): enough
        for categories that only compete at a discount, e.g. a product page's complements."""
        path = category_path(category)
        key = "cat:" + path[-1] if path else ""
        block = self._blocks.get(key)
        if block is None:
            postings = self._by_category.get(path[-1]) if path else None
            rows = postings.view() if postings is not None else _EMPTY
            block = self._blocks[key] = self._best_live(rows, DISCOUNTED_BLOCK)
        return block

    def _best_live(self, rows: np.ndarray, limit: int) -> np.ndarray:
        slots = self.rows[rows, ROW_CAMPAIGN]
        live = (slots >= 0) & (self.campaigns[np.maximum(slots, 0), CAMP_LIVE] == 1)
        rows = rows[live]
        if len(rows) > limit:
            score = self.rows[rows, ROW_BID] * self.rows[rows, ROW_QUALITY]
            rows = rows[np.argpartition(-score, limit)[:limit]]
        return np.sort(rows)  # sorted: kinder to the cache

    def category_candidates(self, category: str) -> np.ndarray:
        path = category_path(category)
        if not path:
            return _EMPTY
        postings = self._by_category.get(path[-1])
        return postings.view() if postings is not None else _EMPTY

    def product_tokens(self, pid: int) -> list[str]:
        return self._product_tokens.get(pid, [])

    def product_categories(self, pid: int) -> list[str]:
        return self._product_cats.get(pid, [])

    def product_category(self, pid: int) -> str | None:
        cats = self._product_cats.get(pid)
        return cats[-1] if cats else None

    def stats(self) -> dict[str, int]:
        return {
            "products": len(self.products),
            "campaigns": self.n_campaigns,
            "rows": self.n_rows - self.dead_rows,
            "dead_rows": self.dead_rows,
            "tokens": len(self._by_token),
            "common_tokens": len(self._common),
            "categories": len(self._by_category),
            "segments": len(self.segment_bit),
            "bytes": int(self.rows.nbytes + self.campaigns.nbytes + self.scratch.nbytes),
        }


_LOW64 = (1 << 64) - 1


def _signed(u: int) -> int:
    """A 64-bit pattern as the int64 numpy stores."""
    return u - (1 << 64) if u >= 1 << 63 else u


def _words(bits: int) -> tuple[int, ...]:
    """A bit set as ``BIT_WORDS`` int64 patterns, lowest bits first."""
    return tuple(_signed((bits >> (64 * k)) & _LOW64) for k in range(BIT_WORDS))
