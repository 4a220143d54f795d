// Command vcsim starts VMware's vSphere simulator (govmomi's simulator package, as packaged
// by Debian) with an inventory shaped for Flotilla: a vCenter or a standalone ESXi model,
// N plain VMs, one template per role, and optional fault injection.
//
// When it is ready it prints machine-readable lines on stdout:
//
//	VCSIM_URL=https://127.0.0.1:PORT/sdk
//	VCSIM_THUMBPRINT_SHA256=AA:BB:...   (TLS only)
//
// Build: GO111MODULE=off GOPATH=/usr/share/gocode go build -o .tools/vcsim ./lab/vcsim
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"flag"
	"fmt"
	"log"
	"math/big"
	"net"
	"net/url"
	"os"
	"os/signal"
	"path"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

func main() {
	modelName := flag.String("model", "vcenter", "inventory model: vcenter or esxi")
	listen := flag.String("listen", "127.0.0.1:0", "listen address (port 0 picks a free port)")
	username := flag.String("username", "user", "login user name")
	password := flag.String("password", "pass", "login password")
	vms := flag.Int("vms", 2, "number of plain VMs")
	templates := flag.String("templates", "", "comma-separated roles; each gets a template named tpl-<role>")
	useTLS := flag.Bool("tls", true, "serve HTTPS with a freshly generated certificate")
	certKind := flag.String("cert", "self-signed", "self-signed, or ca-issued: a leaf issued by a throwaway CA that is not sent (like ESXi's installer CA)")
	failPrefix := flag.String("fail-prefix", "", "creating or cloning a VM whose name starts with this prefix fails")
	failFault := flag.String("fail-fault", "InsufficientResourcesFault", "fault used with -fail-prefix")
	methodDelay := flag.String("method-delay", "", "comma-separated Method=milliseconds delays, e.g. PowerOnVM_Task=3000")
	flag.Parse()

	// Flags are checked before the inventory exists, so a typo costs nothing.
	var fault types.BaseMethodFault
	if *failPrefix != "" {
		var err error
		if fault, err = faultNamed(*failFault); err != nil {
			log.Fatal(err)
		}
	}
	delays, err := parseDelays(*methodDelay)
	if err != nil {
		log.Fatal(err)
	}
	model, err := newModel(*modelName, *vms)
	if err != nil {
		log.Fatal(err)
	}
	if err := model.Create(); err != nil {
		log.Fatalf("creating inventory: %v", err)
	}
	// The model keeps datastores in temporary directories: remove them on every way out.
	fail := func(format string, args ...interface{}) {
		model.Remove()
		log.Fatalf(format, args...)
	}

	model.Service.Listen = &url.URL{Host: *listen, User: url.UserPassword(*username, *password)}
	var thumbprint string
	if *useTLS {
		cert, err := generateCertificate(*certKind)
		if err != nil {
			fail("generating certificate: %v", err)
		}
		model.Service.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
		sum := sha256.Sum256(cert.Certificate[0])
		thumbprint = colonHex(sum[:])
	}
	server := model.Service.NewServer()

	if err := addTemplates(server.URL, splitList(*templates)); err != nil {
		fail("creating templates: %v", err)
	}
	if fault != nil {
		injectCreateFault(*failPrefix, fault)
	}
	// Delays start only now, so building the inventory above is not slowed down.
	if len(delays) > 0 {
		model.DelayConfig.MethodDelay = delays
	}

	publicURL := *server.URL
	publicURL.User = nil
	fmt.Printf("VCSIM_URL=%s\n", publicURL.String())
	if thumbprint != "" {
		fmt.Printf("VCSIM_THUMBPRINT_SHA256=%s\n", thumbprint)
	}
	os.Stdout.Sync()

	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	<-signals
	// Exit at once: closing the server would wait for delayed (-method-delay) calls to finish.
	model.Remove()
	os.Exit(0)
}

func newModel(name string, vms int) (*simulator.Model, error) {
	var model *simulator.Model
	switch strings.ToLower(name) {
	case "vcenter", "vpx":
		model = simulator.VPX()
		model.Host = 0 // only the cluster, so --vms is the exact VM count
		model.Cluster = 1
	case "esxi", "esx":
		model = simulator.ESX()
	default:
		return nil, fmt.Errorf("unknown model %q (vcenter or esxi)", name)
	}
	model.Machine = vms
	return model, nil
}

// addTemplates creates tpl-<role> through the SOAP API itself, the way an administrator would.
func addTemplates(serverURL *url.URL, roles []string) error {
	if len(roles) == 0 {
		return nil
	}
	ctx := context.Background()
	client, err := govmomi.NewClient(ctx, serverURL, true)
	if err != nil {
		return err
	}
	defer client.Logout(ctx)
	finder := find.NewFinder(client.Client, true)
	datacenter, err := finder.DefaultDatacenter(ctx)
	if err != nil {
		return err
	}
	finder.SetDatacenter(datacenter)
	folders, err := datacenter.Folders(ctx)
	if err != nil {
		return err
	}
	pool, err := finder.DefaultResourcePool(ctx)
	if err != nil {
		return err
	}
	datastore, err := finder.DefaultDatastore(ctx)
	if err != nil {
		return err
	}
	for _, role := range roles {
		name := "tpl-" + role
		config := types.VirtualMachineConfigSpec{
			Name:     name,
			GuestId:  string(types.VirtualMachineGuestOsIdentifierUbuntu64Guest),
			NumCPUs:  2,
			MemoryMB: 2048,
			Files:    &types.VirtualMachineFileInfo{VmPathName: "[" + datastore.Name() + "]"},
		}
		var devices object.VirtualDeviceList
		scsi, err := devices.CreateSCSIController("pvscsi")
		if err != nil {
			return err
		}
		disk := devices.CreateDisk(scsi.(types.BaseVirtualController), datastore.Reference(),
			config.Files.VmPathName+" "+path.Join(name, "disk1.vmdk"))
		disk.CapacityInKB = 16 * 1024 * 1024
		devices = append(devices, scsi, disk)
		config.DeviceChange, err = devices.ConfigSpec(types.VirtualDeviceConfigSpecOperationAdd)
		if err != nil {
			return err
		}
		task, err := folders.VmFolder.CreateVM(ctx, config, pool, nil)
		if err != nil {
			return err
		}
		info, err := task.WaitForResult(ctx, nil)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		vm := object.NewVirtualMachine(client.Client, info.Result.(types.ManagedObjectReference))
		if err := vm.MarkAsTemplate(ctx); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}

// failingFolder wraps a VM folder: CreateVM_Task (which CloneVM_Task also goes through)
// fails for names with the configured prefix.
type failingFolder struct {
	// Embedded by value: the simulator finds the managed object by walking first fields.
	simulator.Folder
	prefix string
	fault  types.BaseMethodFault
}

func (f *failingFolder) CreateVMTask(ctx *simulator.Context, req *types.CreateVM_Task) soap.HasFault {
	if !strings.HasPrefix(req.Config.Name, f.prefix) {
		return f.Folder.CreateVMTask(ctx, req)
	}
	task := simulator.CreateTask(&f.Folder, "createVm", func(*simulator.Task) (types.AnyType, types.BaseMethodFault) {
		return nil, f.fault
	})
	return &methods.CreateVM_TaskBody{Res: &types.CreateVM_TaskResponse{Returnval: task.Run()}}
}

func injectCreateFault(prefix string, fault types.BaseMethodFault) {
	for _, reference := range simulator.Map.All("Datacenter") {
		datacenter := reference.(*simulator.Datacenter)
		folder, ok := simulator.Map.Get(datacenter.VmFolder).(*simulator.Folder)
		if ok {
			simulator.Map.Put(&failingFolder{Folder: *folder, prefix: prefix, fault: fault})
		}
	}
}

func faultNamed(name string) (types.BaseMethodFault, error) {
	switch name {
	case "InsufficientResourcesFault":
		return &types.InsufficientResourcesFault{}, nil
	case "NoDiskSpace":
		return &types.NoDiskSpace{Datastore: "LocalDS_0"}, nil
	case "DuplicateName":
		return &types.DuplicateName{Name: "duplicate"}, nil
	case "InvalidArgument":
		return &types.InvalidArgument{InvalidProperty: "name"}, nil
	case "NotEnoughLicenses":
		return &types.NotEnoughLicenses{}, nil
	case "FileAlreadyExists":
		return &types.FileAlreadyExists{}, nil
	}
	return nil, fmt.Errorf("unsupported fault %q", name)
}

func parseDelays(list string) (map[string]int, error) {
	delays := map[string]int{}
	for _, item := range splitList(list) {
		parts := strings.SplitN(item, "=", 2)
		if len(parts) != 2 {
			return nil, fmt.Errorf("bad delay %q (want Method=milliseconds)", item)
		}
		ms, err := strconv.Atoi(parts[1])
		if err != nil {
			return nil, fmt.Errorf("bad delay %q: %v", item, err)
		}
		delays[parts[0]] = ms
	}
	return delays, nil
}

// generateCertificate makes the server certificate: self-signed and its own trust anchor (CA
// basic constraint, cert-sign usage), or a plain leaf issued by a throwaway CA that clients
// never see, so only a pin on the leaf itself can trust it.
func generateCertificate(kind string) (tls.Certificate, error) {
	leafTemplate := x509.Certificate{
		Subject:     pkix.Name{CommonName: "vcsim.localdomain", Organization: []string{"Flotilla vcsim"}},
		NotBefore:   time.Now().Add(-time.Hour),
		NotAfter:    time.Now().Add(365 * 24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:    []string{"vcsim.localdomain", "localhost"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")},
	}
	switch kind {
	case "self-signed":
		leafTemplate.KeyUsage |= x509.KeyUsageCertSign
		leafTemplate.BasicConstraintsValid = true
		leafTemplate.IsCA = true
		return signCertificate(&leafTemplate, nil, nil)
	case "ca-issued":
		caTemplate := x509.Certificate{
			Subject:               pkix.Name{CommonName: "Throwaway installer CA", Organization: []string{"Flotilla vcsim"}},
			NotBefore:             time.Now().Add(-time.Hour),
			NotAfter:              time.Now().Add(365 * 24 * time.Hour),
			KeyUsage:              x509.KeyUsageCertSign,
			BasicConstraintsValid: true,
			IsCA:                  true,
		}
		ca, err := signCertificate(&caTemplate, nil, nil)
		if err != nil {
			return tls.Certificate{}, err
		}
		caCert, err := x509.ParseCertificate(ca.Certificate[0])
		if err != nil {
			return tls.Certificate{}, err
		}
		return signCertificate(&leafTemplate, caCert, ca.PrivateKey.(*ecdsa.PrivateKey))
	}
	return tls.Certificate{}, fmt.Errorf("unknown certificate kind %q (self-signed or ca-issued)", kind)
}

// signCertificate creates a key and a certificate for it, signed by the issuer (itself when nil).
func signCertificate(template, issuer *x509.Certificate, issuerKey *ecdsa.PrivateKey) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		return tls.Certificate{}, err
	}
	template.SerialNumber = serial
	if issuer == nil {
		issuer, issuerKey = template, key
	}
	der, err := x509.CreateCertificate(rand.Reader, template, issuer, &key.PublicKey, issuerKey)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

func colonHex(bytes []byte) string {
	parts := make([]string, len(bytes))
	for i, b := range bytes {
		parts[i] = fmt.Sprintf("%02X", b)
	}
	return strings.Join(parts, ":")
}

func splitList(list string) []string {
	var items []string
	for _, item := range strings.Split(list, ",") {
		if item = strings.TrimSpace(item); item != "" {
			items = append(items, item)
		}
	}
	return items
}
