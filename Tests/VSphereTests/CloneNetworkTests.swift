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

    /// vCenter: a distributed port group, CloneVM_Task and the disk-copy path. ESXi: a standard
    /// port group added for the test, disk-copy path. Sources: a template without a network card
    /// (one is added) and a VM with one (it is moved).
    func testClonesPutTheirFirstNetworkCardOnTheNetworkAskedFor() async throws {
        for model in [Simulator.Model.vCenter, .esxi] {
            let simulator = try start(model)
            let client = try await simulator.connect()
            let datacenter = try await client.datacenter()
            let network: ManagedObjectReference
            let expected: String
            if model == .vCenter {
                network = try await client.find(.network, named: "DC0_DVPG0", in: datacenter.reference).reference
                XCTAssertEqual(network.type, "DistributedVirtualPortgroup")
                let key = try await client.property("key", of: network)?.text
                expected = try XCTUnwrap(key)
            } else {
                try await addPortGroup("flotilla-net", on: client)
                network = try await client.find(.network, named: "flotilla-net", in: datacenter.reference).reference
                XCTAssertEqual(network.type, "Network")
                expected = "flotilla-net"
            }
            let template = try await client.findTemplate(named: "tpl-web", in: datacenter.reference)
            let vms = try await client.listVirtualMachines()
            let plain = try XCTUnwrap(vms.first { !$0.isTemplate })
            let plainVM = client.virtualMachine(plain.reference)
            let plainCards = try networks(of: plain.name, on: simulator)
            XCTAssertFalse(plainCards.isEmpty, "\(model): the simulator's VMs have a network card")
            XCTAssertNotEqual(plainCards.first, expected, "\(model): the test must move the card somewhere new")

            var cases: [(source: VirtualMachine, method: CloneRequest.Method, cards: Int)] = [
                (template, .automatic, 1), (plainVM, .automatic, plainCards.count),
            ]
            if model == .vCenter { cases.append((plainVM, .createAndCopyDisks, plainCards.count)) }
            for (index, item) in cases.enumerated() {
                let name = "net-\(model.rawValue)-\(index)"
                _ = try await client.clone(item.source, CloneRequest(name: name, folder: datacenter.vmFolder, network: network,
                                                                       method: item.method))
                let nics = try networks(of: name, on: simulator)
                XCTAssertEqual(nics.count, item.cards, "\(name): \(nics)")
                XCTAssertEqual(nics.first, expected, "\(name) (\(item.method)): pyvmomi sees the first card on \(nics)")
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
