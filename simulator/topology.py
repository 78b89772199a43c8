"""Build the physical network and its customers from a scenario.

region → city → POP → OLT (vendor, boards × PON ports) → PON (vendor ifIndex) →
first-stage splitter → street box ("caixa", second stage) → drop → ONU → customer + CPE.

Everything is generated with numpy from one ``Generator``; the per-ONU arrays that the
tick loop needs (PON, box, OLT and region index, base optical levels) are kept beside the
DataFrames so that no tick ever looks anything up by string.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from simulator import optics
from simulator.customers import build_customers, draw_shares
from simulator.scenario import Scenario
from simulator.scenario import Topology as TopologySpec
from simulator.vendors import VENDOR_MODELS, device_identities, pon_if_index

__all__ = ["Topology", "build_topology", "pon_if_index", "VENDOR_MODELS", "KM_PER_DEG_LAT"]

KM_PER_DEG_LAT = 111.2
#: Spawn key of the box take-rate stream under the topology's seed (far above any spawn
#: counter: ``rng.spawn`` numbers its children 0, 1, ...).
_BOX_STREAM_KEY = 0xB0C5


@dataclass
class Topology:
    """The simulated network: inventory DataFrames plus per-ONU index arrays.

    Attributes
    ----------
    olts, pons, splitters, onus, customers : pandas.DataFrame
        Inventory tables with the columns of :data:`guardian_lib.schema.INVENTORY_COLUMNS` (``onus`` and ``customers``
        have one row per ONU, in the same order).
    onu_pon, onu_box, onu_olt, onu_region, onu_board : ndarray of int
        Row of each ONU's PON / box / OLT / region / board (in ``pons``, the box rows of
        ``splitters`` with level 2, ``olts``, region list, board list).
    pon_olt, box_pon : ndarray of int
        OLT row of each PON, PON row of each street box.
    base_rx_dbm, base_tx_dbm, base_olt_rx_dbm : ndarray of float
        Healthy optical levels of each ONU. [dBm]
    onu_xy_km : ndarray, shape (n_onus, 2)
        Local planar coordinates used for geographic clustering. [km]
    """

    olts: pd.DataFrame
    pons: pd.DataFrame
    splitters: pd.DataFrame
    onus: pd.DataFrame
    customers: pd.DataFrame
    regions: list[str]
    onu_pon: np.ndarray
    onu_box: np.ndarray
    onu_olt: np.ndarray
    onu_region: np.ndarray
    onu_board: np.ndarray
    n_boxes: int
    n_boards: int
    pon_olt: np.ndarray
    box_pon: np.ndarray
    base_rx_dbm: np.ndarray
    base_tx_dbm: np.ndarray
    base_olt_rx_dbm: np.ndarray
    onu_xy_km: np.ndarray
    onu_vendor: np.ndarray = field(repr=False)

    @property
    def n_onus(self) -> int:
        """Number of ONUs (= customers). [-]"""
        return len(self.onus)

    def tables(self) -> dict[str, pd.DataFrame]:
        """The inventory tables by warehouse name."""
        return {
            "olts": self.olts,
            "pons": self.pons,
            "splitters": self.splitters,
            "onus": self.onus,
            "customers": self.customers,
        }


def _build_olts(scenario: Scenario, rng: np.random.Generator) -> pd.DataFrame:
    """One row per OLT (vendor drawn from the mix), with private ``_region_idx`` / ``_radius_km``."""
    olt_rows = []
    for r_idx, region in enumerate(scenario.topology.regions):
        for k in range(region.olts):
            city = region.cities[k % len(region.cities)]
            vendor = str(draw_shares(rng, scenario.topology.vendor_mix, 1)[0])
            models = VENDOR_MODELS[vendor]["olt_models"]
            dx, dy = rng.normal(0.0, city.radius_km / 4, size=2)
            olt_rows.append(
                {
                    "olt_id": f"OLT-{r_idx + 1:02d}-{k + 1:03d}",
                    "vendor": vendor,
                    "model": models[int(rng.integers(len(models)))],
                    "region": region.name,
                    "city": city.name,
                    "pop_id": f"POP-{r_idx + 1:02d}-{k // 4 + 1:02d}",
                    "lat": city.lat + dy / KM_PER_DEG_LAT,
                    "lon": city.lon + dx / (KM_PER_DEG_LAT * np.cos(np.radians(city.lat))),
                    "mgmt_address": f"10.{r_idx + 1}.{k // 250}.{k % 250 + 1}",
                    "_region_idx": r_idx,
                    "_radius_km": city.radius_km,
                }
            )
    return pd.DataFrame(olt_rows)


@dataclass
class _Pons:
    """Boards and PONs of the fleet, with each PON's feeder and local position [km]."""

    frame: pd.DataFrame
    ids: np.ndarray
    olt: np.ndarray
    board: np.ndarray
    n_boards: int
    feeder_km: np.ndarray
    x_km: np.ndarray
    y_km: np.ndarray
    olt_tx_dbm: np.ndarray


def _build_pons(topo: TopologySpec, olts: pd.DataFrame, rng: np.random.Generator) -> _Pons:
    """Boards × PON ports of every OLT (vectorized), vendor ifIndex, feeder and OLT TX."""
    n_olts = len(olts)
    n_boards = n_olts * topo.boards_per_olt
    board_olt = np.repeat(np.arange(n_olts), topo.boards_per_olt)
    board_slot = np.tile(np.arange(topo.boards_per_olt), n_olts) + 1
    pon_board = np.repeat(np.arange(n_boards), topo.pons_per_board)
    pon_olt = board_olt[pon_board]
    pon_slot = board_slot[pon_board]
    pon_port = np.tile(np.arange(topo.pons_per_board), n_boards)
    n_pons = len(pon_board)
    olt_vendor = olts["vendor"].to_numpy()
    if_index = np.empty(n_pons, dtype=np.int64)
    for vendor in np.unique(olt_vendor):
        m = olt_vendor[pon_olt] == vendor
        if_index[m] = pon_if_index(vendor, pon_slot[m], pon_port[m])
    olt_ids = olts["olt_id"].to_numpy()
    pon_ids = np.char.add(
        np.char.add(np.char.add(olt_ids[pon_olt].astype(str), "/"), pon_slot.astype(str)),
        np.char.add("/", pon_port.astype(str)),
    )
    # Each PON serves an area at some distance from its OLT; the feeder runs there.
    feeder_km = rng.uniform(topo.feeder_km_min, topo.feeder_km_max, n_pons)
    angle = rng.uniform(0, 2 * np.pi, n_pons)
    straight_km = np.minimum(feeder_km / 1.3, olts["_radius_km"].to_numpy()[pon_olt])
    olt_x = np.zeros(n_olts)  # local planar frame per OLT, OLT at the origin
    pon_x = olt_x[pon_olt] + straight_km * np.cos(angle)
    pon_y = straight_km * np.sin(angle)
    olt_tx_dbm = rng.uniform(topo.olt_tx_dbm_min, topo.olt_tx_dbm_max, n_pons)
    frame = pd.DataFrame(
        {
            "pon_id": pon_ids.astype(object),
            "olt_id": olt_ids[pon_olt],
            "slot": pon_slot,
            "port": pon_port,
            "if_index": if_index,
            "technology": "GPON",
            "olt_tx_dbm": olt_tx_dbm.round(2),
            "feeder_km": feeder_km.round(3),
        }
    )
    return _Pons(frame, pon_ids, pon_olt, pon_board, n_boards, feeder_km, pon_x, pon_y, olt_tx_dbm)


@dataclass
class _Drops:
    """Street boxes and ONUs: which PON / box each hangs from, distances [km, m] and position."""

    box_pon: np.ndarray
    box_k: np.ndarray
    box_dist_km: np.ndarray
    box_x: np.ndarray
    box_y: np.ndarray
    onu_pon: np.ndarray
    onu_pos: np.ndarray
    onu_box: np.ndarray
    drop_m: np.ndarray
    onu_x: np.ndarray
    onu_y: np.ndarray


def _place_drops(
    topo: TopologySpec, pons: _Pons, rng: np.random.Generator, r_boxes: np.random.Generator | None
) -> _Drops:
    """ONUs per PON, the street boxes that serve them, and every drop's position.

    ``rng`` draws what every layout has (PON sizes, box and drop geometry for the
    round-robin boxes); ``r_boxes`` only what ``topology.box_take_rate`` adds, so that
    the option changes no other draw of ``rng``.
    """
    n_pons = len(pons.ids)
    onus_per_pon = rng.integers(topo.onus_per_pon_min, topo.onus_per_pon_max + 1, n_pons)
    boxes_per_pon = np.clip(
        np.ceil(onus_per_pon / (0.75 * topo.second_stage_ratio)).astype(int),
        1,
        topo.first_stage_ratio,
    )
    boxes_per_pon = np.maximum(boxes_per_pon, np.ceil(onus_per_pon / topo.second_stage_ratio))
    boxes_per_pon = boxes_per_pon.astype(int)
    n_boxes = int(boxes_per_pon.sum())
    box_dist_km = rng.uniform(0.1, 1.5, n_boxes)
    box_angle = rng.uniform(0, 2 * np.pi, n_boxes)

    n_onus = int(onus_per_pon.sum())
    onu_pon = np.repeat(np.arange(n_pons), onus_per_pon)
    onu_pos = np.arange(n_onus) - np.repeat(np.cumsum(onus_per_pon) - onus_per_pon, onus_per_pon)
    if topo.box_take_rate is None:
        box_start = np.cumsum(boxes_per_pon) - boxes_per_pon
        onu_box = box_start[onu_pon] + onu_pos % boxes_per_pon[onu_pon]
    else:
        onus_per_box = _uneven_boxes(topo, onus_per_pon, r_boxes)
        boxes_per_pon = np.count_nonzero(onus_per_box, axis=1)
        n_boxes = int(boxes_per_pon.sum())
        box_dist_km = r_boxes.uniform(0.1, 1.5, n_boxes)
        box_angle = r_boxes.uniform(0, 2 * np.pi, n_boxes)
        # Boxes fill in order (_uneven_boxes), so the PON's ONUs in order are its boxes'
        # in order; a within-PON shuffle keeps the ONU index from telling the box.
        by_box = np.repeat(np.arange(n_boxes), onus_per_box[onus_per_box > 0])
        onu_box = by_box[np.argsort(onu_pon + r_boxes.random(n_onus), kind="stable")]
    box_pon = np.repeat(np.arange(n_pons), boxes_per_pon)
    box_k = np.arange(n_boxes) - np.repeat(np.cumsum(boxes_per_pon) - boxes_per_pon, boxes_per_pon)
    box_x = pons.x_km[box_pon] + box_dist_km / 1.4 * np.cos(box_angle)
    box_y = pons.y_km[box_pon] + box_dist_km / 1.4 * np.sin(box_angle)
    drop_m = rng.uniform(topo.drop_m_min, topo.drop_m_max, n_onus)
    drop_angle = rng.uniform(0, 2 * np.pi, n_onus)
    onu_x = box_x[onu_box] + drop_m / 1000 / 1.2 * np.cos(drop_angle)
    onu_y = box_y[onu_box] + drop_m / 1000 / 1.2 * np.sin(drop_angle)
    return _Drops(
        box_pon, box_k, box_dist_km, box_x, box_y, onu_pon, onu_pos, onu_box, drop_m, onu_x, onu_y
    )


def _uneven_boxes(
    topo: TopologySpec, onus_per_pon: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """ONUs on each street box of each PON when boxes differ in take rate.

    Each of a PON's ``first_stage_ratio`` possible boxes draws a take rate (Beta of
    ``topo.box_take_rate``) and would serve that share of its ``second_stage_ratio``
    ports (at least one ONU: a box nobody uses is not built, and a fault of an empty box
    would darken no one). Boxes are built in order until they hold the PON's ONUs, the
    last one taking what is left. When all ``first_stage_ratio`` boxes hold too few, the
    rest go to free ports drawn at random (more customers on the streets that have room).

    Parameters
    ----------
    topo : simulator.scenario.Topology
        With ``box_take_rate`` set.
    onus_per_pon : ndarray of int, shape (n_pons,)
        ONUs of each PON, at most ``first_stage_ratio * second_stage_ratio``. [-]
    rng : numpy.random.Generator
        The option's own stream.

    Returns
    -------
    ndarray of int, shape (n_pons, first_stage_ratio)
        ONUs on each box, 1 to ``second_stage_ratio`` on the PON's first boxes and 0 on
        the boxes not built; each row sums to the PON's ONUs. [-]
    """
    n_pons, width, ports = len(onus_per_pon), topo.first_stage_ratio, topo.second_stage_ratio
    a, b = topo.box_take_rate.beta_ab
    take = rng.beta(a, b, (n_pons, width))
    want = np.clip(np.rint(take * ports).astype(np.int64), 1, ports)
    before = np.cumsum(want, axis=1) - want  # ONUs on the boxes before each box
    need = onus_per_pon[:, None]
    # Box k is built while the boxes before it hold fewer than the PON's ONUs; it takes
    # its wish or what is left, whichever is fewer.
    per_box = np.clip(np.minimum(want, need - before), 0, None)
    short = onus_per_pon - per_box.sum(axis=1)
    for p in np.flatnonzero(short > 0):  # the PONs whose boxes all hold too few
        free = ports - per_box[p]
        ports_taken = rng.choice(int(free.sum()), int(short[p]), replace=False)
        per_box[p] += np.bincount(
            np.searchsorted(np.cumsum(free), ports_taken, side="right"), minlength=width
        )
    return per_box


def _onu_optics(
    topo: TopologySpec, pons: _Pons, drops: _Drops, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Fibre length [km] and healthy RX, TX and OLT-side RX of every ONU [dBm]."""
    n_onus = len(drops.onu_pon)
    fibre_km = (
        pons.feeder_km[drops.onu_pon] + drops.box_dist_km[drops.onu_box] + drops.drop_m / 1000
    )
    split_db = optics.splitter_loss_db([topo.first_stage_ratio, topo.second_stage_ratio]).sum()
    extra_db = np.clip(rng.normal(0.8, 0.5, n_onus), 0.0, 2.0)  # splices, ageing
    down_db = optics.link_loss_db(fibre_km, split_db, topo.connectors, 1490) + extra_db
    up_db = optics.link_loss_db(fibre_km, split_db, topo.connectors, 1310) + extra_db
    # Keep every link inside the class B+ budget as a planner would (longer ones get
    # a shorter route), so that a healthy ONU is never born degraded.
    excess = np.clip(up_db - (optics.BUDGET_B_PLUS_DB[1] - 0.5), 0.0, None)
    down_db -= excess
    up_db -= excess
    base_rx = pons.olt_tx_dbm[drops.onu_pon] - down_db
    base_tx = rng.uniform(1.0, 4.0, n_onus)
    return fibre_km, base_rx, base_tx, base_tx - up_db


def _splitters(topo: TopologySpec, olts: pd.DataFrame, pons: _Pons, drops: _Drops) -> pd.DataFrame:
    """First-stage splitters (one per PON) and street boxes (second stage)."""
    olt_lat = olts["lat"].to_numpy()
    olt_lon = olts["lon"].to_numpy()
    box_olt = pons.olt[drops.box_pon]
    box_lat = olt_lat[box_olt] + drops.box_y / KM_PER_DEG_LAT
    box_lon = olt_lon[box_olt] + drops.box_x / (
        KM_PER_DEG_LAT * np.cos(np.radians(olt_lat[box_olt]))
    )
    first_ids = np.char.add("SPL-", pons.ids)
    first = pd.DataFrame(
        {
            "splitter_id": first_ids.astype(object),
            "pon_id": pons.ids.astype(object),
            "parent_id": None,
            "level": 1,
            "ratio": topo.first_stage_ratio,
            "lat": olt_lat[pons.olt] + pons.y_km / KM_PER_DEG_LAT,
            "lon": olt_lon[pons.olt]
            + pons.x_km / (KM_PER_DEG_LAT * np.cos(np.radians(olt_lat[pons.olt]))),
        }
    )
    boxes = pd.DataFrame(
        {
            "splitter_id": _box_ids(pons, drops).astype(object),
            "pon_id": pons.ids[drops.box_pon].astype(object),
            "parent_id": first_ids[drops.box_pon].astype(object),
            "level": 2,
            "ratio": topo.second_stage_ratio,
            "lat": box_lat,
            "lon": box_lon,
        }
    )
    return pd.concat([first, boxes], ignore_index=True)


def _box_ids(pons: _Pons, drops: _Drops) -> np.ndarray:
    return np.char.add(
        np.char.add("CX-", pons.ids[drops.box_pon]), np.char.add("-", drops.box_k.astype(str))
    )


def _box_stream(rng: np.random.Generator) -> np.random.Generator:
    """The stream of ``topology.box_take_rate``: a child of ``rng``'s seed under a key of
    its own (not a spawn counter), so that no draw of ``rng`` or of its spawned children
    moves when the option is set, and the same seed gives the same boxes.

    Raises
    ------
    ValueError
        ``rng`` was not seeded from a :class:`numpy.random.SeedSequence`.
    """
    seq = rng.bit_generator.seed_seq
    if not isinstance(seq, np.random.SeedSequence):
        raise ValueError("build_topology needs a Generator seeded from a SeedSequence")
    return np.random.default_rng(
        np.random.SeedSequence(seq.entropy, spawn_key=(*seq.spawn_key, _BOX_STREAM_KEY))
    )


def build_topology(scenario: Scenario, rng: np.random.Generator) -> Topology:
    """Generate the network, its optics and its customers.

    The steps draw from ``rng`` in a fixed order (OLTs, PONs, drops, optics, devices,
    customers): same scenario and seed, same network. Uneven street boxes
    (``topology.box_take_rate``) draw from a stream of their own under the same seed
    (:func:`_box_stream`), so setting the option moves no draw of ``rng``.

    Parameters
    ----------
    scenario : Scenario
    rng : numpy.random.Generator
        The only source of randomness.

    Returns
    -------
    Topology
    """
    topo = scenario.topology
    olts = _build_olts(scenario, rng)
    pons = _build_pons(topo, olts, rng)
    # The option's own stream only when it is set: without it nothing else is asked of
    # the generator (any seeded Generator works, as before).
    r_boxes = None if topo.box_take_rate is None else _box_stream(rng)
    drops = _place_drops(topo, pons, rng, r_boxes)
    onu_olt = pons.olt[drops.onu_pon]
    onu_region = olts["_region_idx"].to_numpy()[onu_olt]
    fibre_km, base_rx, base_tx, base_olt_rx = _onu_optics(topo, pons, drops, rng)
    onu_vendor = olts["vendor"].to_numpy()[onu_olt]
    ids = device_identities(onu_vendor, rng)
    olt_lat = olts["lat"].to_numpy()[onu_olt]
    olt_lon = olts["lon"].to_numpy()[onu_olt]
    lat = olt_lat + drops.onu_y / KM_PER_DEG_LAT
    lon = olt_lon + drops.onu_x / (KM_PER_DEG_LAT * np.cos(np.radians(olt_lat)))
    onus = pd.DataFrame(
        {
            "onu_id": ids["serial"], "serial": ids["serial"],
            "pon_id": pons.ids[drops.onu_pon].astype(object),
            "olt_id": olts["olt_id"].to_numpy()[onu_olt],
            "splitter_id": _box_ids(pons, drops)[drops.onu_box].astype(object),
            "onu_index": drops.onu_pos + 1, "vendor": onu_vendor, "model": ids["model"],
            "distance_m": np.round(fibre_km * 1000).astype(np.int64), "lat": lat, "lon": lon,
        }
    )  # fmt: skip
    customers = build_customers(scenario, olts, onu_olt, onu_region, ids, lat, lon, rng)
    # Geographic frame shared by all OLTs (for power-outage clusters across PONs).
    ref_lat = float(np.mean(olts["lat"]))
    onu_xy = np.column_stack(
        [
            (lon - float(np.mean(olts["lon"]))) * KM_PER_DEG_LAT * np.cos(np.radians(ref_lat)),
            (lat - ref_lat) * KM_PER_DEG_LAT,
        ]
    )
    return Topology(
        olts=olts.drop(columns=["_region_idx", "_radius_km"]), pons=pons.frame,
        splitters=_splitters(topo, olts, pons, drops), onus=onus, customers=customers,
        regions=[r.name for r in topo.regions], onu_pon=drops.onu_pon, onu_box=drops.onu_box,
        onu_olt=onu_olt, onu_region=onu_region, onu_board=pons.board[drops.onu_pon],
        n_boxes=len(drops.box_pon), n_boards=pons.n_boards, pon_olt=pons.olt,
        box_pon=drops.box_pon, base_rx_dbm=base_rx, base_tx_dbm=base_tx,
        base_olt_rx_dbm=base_olt_rx, onu_xy_km=onu_xy, onu_vendor=onu_vendor,
    )  # fmt: skip
