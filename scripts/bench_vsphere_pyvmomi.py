#!/usr/bin/env python3
"""pyvmomi side of scripts/bench-vsphere: the same two calls the Swift benchmark times.

1. One RetrievePropertiesEx over a ContainerView of all VMs for the given property paths
   (pyvmomi's PropertyCollector, following continuation tokens): the six-property listing
   and the full VMSummary listing, with the paths the Swift benchmark printed.
2. One QueryPerf for all (non-template) VMs: cpu.usage.average and mem.usage.average,
   20 s interval, 15 samples.
Prints name=value lines (best of N runs, after one warm-up run).
"""
import argparse
import ssl
import time
from urllib.parse import urlparse

from pyVim.connect import SmartConnect
from pyVmomi import vim, vmodl


def best(iterations, body):
    """Best wall time of `iterations` runs, after one untimed warm-up run."""
    result = body()
    times = []
    for _ in range(iterations):
        start = time.perf_counter()
        result = body()
        times.append(time.perf_counter() - start)
    return min(times), result


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--username", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--paths", required=True, help="comma-separated paths of the short listing")
    parser.add_argument("--full-paths", required=True, help="comma-separated paths of the full listing")
    args = parser.parse_args()
    url = urlparse(args.url)
    si = SmartConnect(protocol=url.scheme, host=url.hostname, port=url.port, user=args.username,
                      pwd=args.password, sslContext=ssl._create_unverified_context())
    content = si.RetrieveContent()
    collector = content.propertyCollector

    def listing(paths):
        view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
        spec = vmodl.query.PropertyCollector.FilterSpec(
            objectSet=[vmodl.query.PropertyCollector.ObjectSpec(
                obj=view, skip=True,
                selectSet=[vmodl.query.PropertyCollector.TraversalSpec(
                    name="traverseView", type=vim.view.ContainerView, path="view", skip=False)])],
            propSet=[vmodl.query.PropertyCollector.PropertySpec(type=vim.VirtualMachine, pathSet=paths)])
        objects = []
        result = collector.RetrievePropertiesEx([spec], vmodl.query.PropertyCollector.RetrieveOptions())
        while result:
            for obj in result.objects:
                objects.append((obj.obj, {p.name: p.val for p in obj.propSet}))
            result = collector.ContinueRetrievePropertiesEx(result.token) if result.token else None
        view.Destroy()
        return objects

    list_seconds, objects = best(args.iterations, lambda: listing(args.paths.split(",")))
    full_seconds, _ = best(args.iterations, lambda: listing(args.full_paths.split(",")))
    vms = [obj for obj, props in objects if not props.get("config.template")]
    counters = {f"{c.groupInfo.key}.{c.nameInfo.key}.{c.rollupType}": c.key for c in content.perfManager.perfCounter}
    metric_ids = [vim.PerformanceManager.MetricId(counterId=counters[name], instance="")
                  for name in ("cpu.usage.average", "mem.usage.average")]

    def query():
        specs = [vim.PerformanceManager.QuerySpec(entity=vm, metricId=metric_ids, intervalId=20, maxSample=15)
                 for vm in vms]
        return content.perfManager.QueryPerf(querySpec=specs)

    perf_seconds, metrics = best(args.iterations, query)
    print(f"vms={len(objects)}")
    print(f"listing_seconds={list_seconds:.4f}")
    print(f"full_listing_seconds={full_seconds:.4f}")
    print(f"perf_entities={len(metrics)}")
    print(f"queryperf_seconds={perf_seconds:.4f}")


if __name__ == "__main__":
    main()
