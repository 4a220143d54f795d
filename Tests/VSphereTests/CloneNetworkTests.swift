import Foundation
import XCTest

@testable import VSphere

/// A clone lands on the network asked for, on both clone paths, and lookups stay inside the
/// datacenter named (issue 8, §3: a connection's datacenter and network were stored but unused).
final class CloneNetworkTests: XCTestCase {
    private var simulators: [Simulator] = []

    override func tearDown() async throws {
        for simulator in simulators { await simulator.shutdown() }
        simulators.removeAll()
        try await super.tearDown()
    }

    private func start(_ model: Simulator.Model) throws -> Simulator {
        let simulator = try Simulator(model: model, vms: 1)
        simulators.append(simulator)
        return simulator
    }

    /// vCenter: a distributed and a standard port group, CloneVM_Task and the disk-copy path.
    /// ESXi: a standard port group, disk-copy path. Sources: a template without a network card
    /// (one is added) and a VM with one (it is moved).
    func testClonesPutTheirFirstNetworkCardOnTheNetworkAskedFor() async throws {
        for model in [Simulator.Model.vCenter, .esxi] {
            let simulator = try start(model)
            let client = try await simulator.connect()
            let datacenter = try await client.datacenter()
            // Each target network with what pyvmomi reports for a card on it.
            var targets: [(network: ManagedObjectReference, seen: String)] = []
            if model == .vCenter {
                let portgroup = try await client.find(.network, named: "DC0_DVPG0", in: datacenter.reference).reference
                XCTAssertEqual(portgroup.type, "DistributedVirtualPortgroup")
                let key = try await client.property("key", of: portgroup)?.text
                targets.append((portgroup, try XCTUnwrap(key)))
            }
            try await addPortGroup("flotilla-net", on: client)
            let standard = try await client.find(.network, named: "flotilla-net", in: datacenter.reference).reference
            XCTAssertEqual(standard.type, "Network")
            targets.append((standard, "flotilla-net"))

            let template = try await client.findTemplate(named: "tpl-web", in: datacenter.reference)
            let vms = try await client.listVirtualMachines()
            let plain = try XCTUnwrap(vms.first { !$0.isTemplate })
            let plainCards = try networks(of: plain.name, on: simulator)
            XCTAssertFalse(plainCards.isEmpty, "\(model): the simulator's VMs have a network card")

            var cases: [(source: VirtualMachine, current: String?, method: CloneRequest.Method, cards: Int)] = [
                (template, nil, .automatic, 1), (client.virtualMachine(plain.reference), plainCards.first, .automatic, plainCards.count),
            ]
            if model == .vCenter {
                cases.append((client.virtualMachine(plain.reference), plainCards.first, .createAndCopyDisks, plainCards.count))
            }
            for (index, item) in cases.enumerated() {
                // Somewhere the card is not already.
                let target = try XCTUnwrap(targets.first { $0.seen != item.current })
                let name = "net-\(model.rawValue)-\(index)"
                _ = try await client.clone(
                    item.source,
                    CloneRequest(
                        name: name, folder: datacenter.vmFolder, network: target.network,
                        method: item.method))
                let nics = try networks(of: name, on: simulator)
                XCTAssertEqual(nics.count, item.cards, "\(name): \(nics)")
                XCTAssertEqual(nics.first, target.seen, "\(name) (\(item.method)): pyvmomi sees the first card on \(nics)")
            }
            try await client.close()
        }
    }

    func testLookupsStayInsideTheContainerNamed() async throws {
        for model in [Simulator.Model.vCenter, .esxi] {
            let simulator = try start(model)
            let client = try await simulator.connect()
            let datacenter = try await client.datacenter()
            let datastores = try await client.list(.datastore)
            let datastore = try XCTUnwrap(datastores.first)
            let found = try await client.find(.datastore, named: datastore.name, in: datacenter.reference)
            XCTAssertEqual(found.reference, datastore.reference)
            do {
                _ = try await client.find(.datastore, named: datastore.name, in: datacenter.vmFolder)
                XCTFail("\(model): found a datastore in the VM folder")
            } catch VSphereError.notFound(let what) {
                XCTAssertTrue(what.contains(datastore.name), what)
            }
            try await client.close()
        }
    }

    /// What pyvmomi sees: each network card's port group name or distributed port group key.
    private func networks(of vm: String, on simulator: Simulator) throws -> [String] {
        let cards = try XCTUnwrap(try simulator.probe(["vm", "--name", vm])["nics"] as? [Any], "\(vm) has no card list")
        return cards.map { $0 as? String ?? "(none)" }
    }

    /// A standard port group on the first host's vSwitch0 (also a `Network` in the inventory).
    private func addPortGroup(_ name: String, on client: VSphereClient) async throws {
        let hosts = try await client.list(.host)
        let host = try XCTUnwrap(hosts.first)
        let networkSystemElement = try await client.property("configManager.networkSystem", of: host.reference)
        let networkSystem = try XCTUnwrap(ManagedObjectReference(networkSystemElement))
        let spec = DataObject(nil, [("name", name), ("vlanId", 0), ("vswitchName", "vSwitch0"), ("policy", DataObject(nil, []))])
        _ = try await client.connection.invoke(SOAPOperation("AddPortGroup", on: networkSystem, [("portgrp", spec)]))
    }
}
