#!/usr/bin/env python3
"""Independent view of a vSphere endpoint through pyvmomi, for the VSphere library's tests.

Prints one JSON object on stdout.
  vm --name NAME   the VM's existence, moref, folder, power state, template flag, extraConfig,
                   and its network cards' networks (port group name, or distributed port group key)
  list             every VM: name, moref, power state, template flag
"""
import argparse
import json
import ssl
import sys
from urllib.parse import urlparse

from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim


def connect(args):
    url = urlparse(args.url)
    # The probe is a test oracle against a local simulator with a generated certificate,
    # which the Swift side verifies by its pinned thumbprint.
    context = ssl._create_unverified_context() if url.scheme == "https" else None
    return SmartConnect(
        protocol=url.scheme,
        host=url.hostname,
        port=url.port or (443 if url.scheme == "https" else 80),
        user=args.username,
        pwd=args.password,
        sslContext=context,
    )


def all_vms(content):
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
    try:
        return list(view.view)
    finally:
        view.Destroy()


def nic_network(card):
    """The network a card is on: a port group's name, or a distributed port group's key."""
    backing = card.backing
    if isinstance(backing, vim.vm.device.VirtualEthernetCard.DistributedVirtualPortBackingInfo):
        return backing.port.portgroupKey
    return getattr(backing, "deviceName", None)


def describe(vm):
    extra = {}
    for option in vm.config.extraConfig or []:
        extra[option.key] = option.value  # later occurrences overwrite earlier ones
    return {
        "exists": True,
        "name": vm.name,
        "moref": vm._moId,
        "folder": vm.parent._moId if vm.parent else None,
        "folderName": vm.parent.name if vm.parent else None,
        "powerState": str(vm.runtime.powerState),
        "template": bool(vm.config.template),
        "extraConfig": extra,
        "numCPU": vm.config.hardware.numCPU,
        "memoryMB": vm.config.hardware.memoryMB,
        "nics": [nic_network(device) for device in vm.config.hardware.device
                 if isinstance(device, vim.vm.device.VirtualEthernetCard)],
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--username", required=True)
    parser.add_argument("--password", required=True)
    sub = parser.add_subparsers(dest="command", required=True)
    one = sub.add_parser("vm")
    one.add_argument("--name", required=True)
    sub.add_parser("list")
    args = parser.parse_args()

    si = connect(args)
    try:
        vms = all_vms(si.RetrieveContent())
        if args.command == "vm":
            match = [vm for vm in vms if vm.name == args.name]
            result = describe(match[0]) if match else {"exists": False, "name": args.name}
        else:
            result = {"vms": [{"name": vm.name, "moref": vm._moId, "powerState": str(vm.runtime.powerState),
                               "template": bool(vm.config.template)} for vm in vms]}
        json.dump(result, sys.stdout)
    finally:
        Disconnect(si)


if __name__ == "__main__":
    main()
