"""Send /predict traffic to a running `pitstop serve`, optionally with longer trips (a shift to watch for).

    python send_traffic.py --port 8000 --key "$KEY" --requests 300
    python send_traffic.py --port 8000 --key "$KEY" --requests 300 --trip-km 40 80   # trips got longer
"""

from __future__ import annotations

import argparse
import json
import urllib.request

import numpy as np

DRIVERS = np.arange(1001, 1051)
CUSTOMERS = np.arange(2001, 2101)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--key", required=True, help="an API key with the predict scope")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--entities", type=int, default=10, help="entities per request")
    parser.add_argument("--trip-km", type=float, nargs=2, default=(1.0, 60.0), metavar=("MIN", "MAX"),
                        help="trip distances are drawn uniformly from this range (training: 1 to 60)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    url = f"http://127.0.0.1:{args.port}/predict"
    for _ in range(args.requests):
        body = {"model": "trip_completion",
                "entities": {"driver_id": rng.choice(DRIVERS, args.entities).tolist(),
                             "customer_id": rng.choice(CUSTOMERS, args.entities).tolist()},
                "request_data": {"trip_distance_km": rng.uniform(*args.trip_km, args.entities).round(1).tolist()}}
        request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST", headers={
            "content-type": "application/json", "authorization": f"Bearer {args.key}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()
    print(f"sent {args.requests} requests x {args.entities} entities, trips {args.trip_km[0]:g}-{args.trip_km[1]:g} km")


if __name__ == "__main__":
    main()
