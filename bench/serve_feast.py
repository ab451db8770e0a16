"""Register a Feast FeatureService over every benchmark view (run with bench/.feast-venv's python).

    bench/.feast-venv/bin/python bench/serve_feast.py WORK_DIR SERVICE_NAME

WORK_DIR is the repo that ``feast_runner.py materialize`` wrote; the service lists the views in
order (view_0, view_1, ...), so its features are the same 30, in the same order, as pitstop's
service. Prints one JSON line.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    from feast import FeatureService, FeatureStore

    work, name = Path(sys.argv[1]).resolve(), sys.argv[2]
    store = FeatureStore(repo_path=str(work))
    views = sorted(store.list_feature_views(), key=lambda v: v.name)
    store.apply([FeatureService(name=name, features=views)])
    service = store.get_feature_service(name)
    refs = [f"{p.name}:{f.name}" for p in service.feature_view_projections for f in p.features]
    print(json.dumps({"feature_service": name, "views": [v.name for v in views], "features": len(refs)}))


if __name__ == "__main__":
    main()
