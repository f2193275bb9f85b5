"""Regions of a generated Internet and the latencies between them.

A region is an exchange point at a city's coordinates with a UTC offset. The one-way
latency of a link is the great-circle distance at the speed of light in fibre (about
2/3 c) plus a fixed overhead for the routers on the way (docs/sources.md, generated
worlds). Latencies inside a region use the same formula over a distance drawn up to
``REGION_RADIUS_KM``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

__all__ = [
    "EARTH_RADIUS_KM", "FIBRE_KM_PER_S", "REGIONS", "REGION_RADIUS_KM", "ROUTER_OVERHEAD",
    "Region", "great_circle_km", "one_way_latency",
]

# IUGG mean Earth radius (Moritz, "Geodetic Reference System 1980", J. Geodesy 2000).
EARTH_RADIUS_KM = 6371.0088
# Light in silica fibre (group index about 1.47) covers about 2/3 of c = 299,792.458 km/s.
FIBRE_KM_PER_S = 299_792.458 * 2 / 3
# One-way time spent in routers and switches on a link, beyond propagation: an assumption.
ROUTER_OVERHEAD = 0.001
# How far a host may be from its region's exchange point (an assumption: a metro area
# up to a national backbone).
REGION_RADIUS_KM = 1000.0


class Region(NamedTuple):
    """An exchange point: name, latitude and longitude (degrees), UTC offset (hours)."""

    name: str
    lat: float
    lon: float
    utc_offset: float


# In the order ``--regions R`` takes them: the first R. Coordinates of the cities of
# large exchange points (GeoNames); offsets are standard time (no daylight saving).
REGIONS: tuple[Region, ...] = (
    Region("us-east", 39.04, -77.49, -5.0),  # Ashburn
    Region("eu-central", 50.11, 8.68, 1.0),  # Frankfurt
    Region("ap-southeast", 1.35, 103.82, 8.0),  # Singapore
    Region("us-west", 37.34, -121.89, -8.0),  # San Jose
    Region("ap-northeast", 35.68, 139.69, 9.0),  # Tokyo
    Region("sa-east", -23.55, -46.63, -3.0),  # Sao Paulo
    Region("ap-south", 19.08, 72.88, 5.5),  # Mumbai
    Region("eu-west", 51.51, -0.13, 0.0),  # London
    Region("oc-east", -33.87, 151.21, 10.0),  # Sydney
    Region("af-south", -26.20, 28.05, 2.0),  # Johannesburg
)


def great_circle_km(a: Region, b: Region) -> float:
    """Distance between two regions' exchange points on a sphere (haversine), in km."""
    p1, p2 = math.radians(a.lat), math.radians(b.lat)
    dp, dl = p2 - p1, math.radians(b.lon - a.lon)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def one_way_latency(km: float) -> float:
    """One-way seconds over ``km`` of fibre, routers included."""
    return km / FIBRE_KM_PER_S + ROUTER_OVERHEAD
