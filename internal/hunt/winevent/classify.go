package winevent

import (
	"strconv"
	"strings"

	"github.com/vigil-edr/vigil/internal/event"
)

// Product is the Sigma product of every Windows event.
const Product = "windows"

// kind says which category table applies to a channel.
type kind uint8

const (
	kindPlain kind = iota
	kindSecurity
	kindSysmon
	kindPowerShell
	kindPowerShellClassic
	kindDefender
)

type channelInfo struct {
	services []string
	kind     kind
}

func svc(names ...string) []string { return names }

// channels maps an event log channel to its Sigma services. It is our own
// table, built from the logsource definitions in SigmaHQ's tests/thor.yml,
// plus the services SigmaHQ rules use that thor.yml does not list
// (dns-server, driver-framework, and the old microsoft-servicebus-client
// name that one rule still uses).
var channels = map[string]channelInfo{
	"Application":                                                              {svc("application"), kindPlain},
	"Security":                                                                 {svc("security"), kindSecurity},
	"System":                                                                   {svc("system"), kindPlain},
	"Microsoft-Windows-NTLM/Operational":                                       {svc("ntlm"), kindPlain},
	"Microsoft-Windows-Sysmon/Operational":                                     {svc("sysmon"), kindSysmon},
	"Microsoft-Windows-PowerShell/Operational":                                 {svc("powershell"), kindPowerShell},
	"PowerShellCore/Operational":                                               {svc("powershell"), kindPowerShell},
	"Windows PowerShell":                                                       {svc("powershell-classic"), kindPowerShellClassic},
	"Microsoft-Windows-TaskScheduler/Operational":                              {svc("taskscheduler"), kindPlain},
	"Microsoft-Windows-WMI-Activity/Operational":                               {svc("wmi"), kindPlain},
	"Microsoft-Windows-DHCP-Server/Operational":                                {svc("dhcp"), kindPlain},
	"Microsoft-Windows-PrintService/Admin":                                     {svc("printservice-admin"), kindPlain},
	"Microsoft-Windows-PrintService/Operational":                               {svc("printservice-operational"), kindPlain},
	"Microsoft-Windows-SmbClient/Security":                                     {svc("smbclient-security"), kindPlain},
	"Microsoft-Windows-SmbClient/Connectivity":                                 {svc("smbclient-connectivity"), kindPlain},
	"Microsoft-Windows-SMBServer/Connectivity":                                 {svc("smbserver-connectivity"), kindPlain},
	"Microsoft-Windows-TerminalServices-LocalSessionManager/Operational":       {svc("terminalservices-localsessionmanager"), kindPlain},
	"Microsoft-Windows-CodeIntegrity/Operational":                              {svc("codeintegrity-operational"), kindPlain},
	"Microsoft-Windows-AppLocker/MSI and Script":                               {svc("applocker"), kindPlain},
	"Microsoft-Windows-AppLocker/EXE and DLL":                                  {svc("applocker"), kindPlain},
	"Microsoft-Windows-AppLocker/Packaged app-Deployment":                      {svc("applocker"), kindPlain},
	"Microsoft-Windows-AppLocker/Packaged app-Execution":                       {svc("applocker"), kindPlain},
	"MSExchange Management":                                                    {svc("msexchange-management"), kindPlain},
	"Microsoft-Windows-Windows Defender/Operational":                           {svc("windefend"), kindDefender},
	"Microsoft-Windows-Windows Firewall With Advanced Security/Firewall":       {svc("firewall-as"), kindPlain},
	"Microsoft-Windows-Bits-Client/Operational":                                {svc("bits-client"), kindPlain},
	"Microsoft-Windows-Security-Mitigations/Kernel Mode":                       {svc("security-mitigations"), kindPlain},
	"Microsoft-Windows-Security-Mitigations/User Mode":                         {svc("security-mitigations"), kindPlain},
	"Microsoft-Windows-Diagnosis-Scripted/Operational":                         {svc("diagnosis-scripted"), kindPlain},
	"Microsoft-Windows-Shell-Core/Operational":                                 {svc("shell-core"), kindPlain},
	"OpenSSH/Operational":                                                      {svc("openssh"), kindPlain},
	"Microsoft-Windows-LDAP-Client/Debug":                                      {svc("ldap"), kindPlain},
	"Microsoft-Windows-BitLocker/BitLocker Management":                         {svc("bitlocker"), kindPlain},
	"Microsoft-Windows-VHDMP/Operational":                                      {svc("vhdmp"), kindPlain},
	"Microsoft-Windows-AppXDeploymentServer/Operational":                       {svc("appxdeployment-server"), kindPlain},
	"Microsoft-Windows-LSA/Operational":                                        {svc("lsa-server"), kindPlain},
	"Microsoft-Windows-AppxPackaging/Operational":                              {svc("appxpackaging-om"), kindPlain},
	"Microsoft-Windows-DNS Client Events/Operational":                          {svc("dns-client"), kindPlain},
	"Microsoft-Windows-AppModel-Runtime/Admin":                                 {svc("appmodel-runtime"), kindPlain},
	"Microsoft-Windows-CAPI2/Operational":                                      {svc("capi2"), kindPlain},
	"Microsoft-Windows-CertificateServicesClient-Lifecycle-System/Operational": {svc("certificateservicesclient-lifecycle-system"), kindPlain},
	"Microsoft-Windows-Kernel-ShimEngine/Operational":                          {svc("kernel-shimengine"), kindPlain},
	"Microsoft-Windows-Kernel-ShimEngine/Diagnostic":                           {svc("kernel-shimengine"), kindPlain},
	"Microsoft-Windows-Application-Experience/Program-Telemetry":               {svc("application-experience"), kindPlain},
	"Microsoft-Windows-Application-Experience/Program-Compatibility-Assistant": {svc("application-experience"), kindPlain},
	"Microsoft-Windows-Ntfs/Operational":                                       {svc("ntfs"), kindPlain},
	"Microsoft-Windows-Hyper-V-Worker":                                         {svc("hyper-v-worker"), kindPlain},
	"Microsoft-Windows-Hyper-V-Worker-Admin":                                   {svc("hyper-v-worker"), kindPlain},
	"Microsoft-Windows-Kernel-EventTracing":                                    {svc("kernel-event-tracing"), kindPlain},
	"Microsoft-Windows-SENSE/Operational":                                      {svc("sense"), kindPlain},
	"Microsoft-ServiceBus-Client/Admin":                                        {svc("servicebus-client", "microsoft-servicebus-client"), kindPlain},
	"Microsoft-ServiceBus-Client/Operational":                                  {svc("servicebus-client", "microsoft-servicebus-client"), kindPlain},
	"Microsoft-IIS-Configuration/Operational":                                  {svc("iis-configuration"), kindPlain},
	"DNS Server": {svc("dns-server"), kindPlain},
	"Microsoft-Windows-DNS-Server/Analytical":                 {svc("dns-server-analytic"), kindPlain},
	"Microsoft-Windows-DriverFrameworks-UserMode/Operational": {svc("driver-framework"), kindPlain},
}

func cat(names ...string) []string { return names }

// sysmonCategories maps a Sysmon EventID to its Sigma categories (thor.yml).
// Event 12 is refined by EventType in Classify.
var sysmonCategories = map[int][]string{
	1:   cat("process_creation"),
	2:   cat("file_change"),
	3:   cat("network_connection"),
	4:   cat("sysmon_status"),
	5:   cat("process_termination"),
	6:   cat("driver_load"),
	7:   cat("image_load"),
	8:   cat("create_remote_thread"),
	9:   cat("raw_access_thread"),
	10:  cat("process_access"),
	11:  cat("file_event"),
	12:  cat("registry_event"),
	13:  cat("registry_event", "registry_set"),
	14:  cat("registry_event", "registry_rename"),
	15:  cat("create_stream_hash"),
	16:  cat("sysmon_status"),
	17:  cat("pipe_created"),
	18:  cat("pipe_created"),
	19:  cat("wmi_event"),
	20:  cat("wmi_event"),
	21:  cat("wmi_event"),
	22:  cat("dns_query"),
	23:  cat("file_delete"),
	24:  cat("clipboard_change"),
	25:  cat("process_tampering"),
	26:  cat("file_delete_detected"),
	27:  cat("file_block_executable"),
	28:  cat("file_block_shredding"),
	29:  cat("file_executable_detected"),
	255: cat("sysmon_error"),
}

var (
	registryAdd      = cat("registry_event", "registry_add")
	registryDelete   = cat("registry_event", "registry_delete")
	processCreation  = cat("process_creation")
	psModule         = cat("ps_module")
	psScript         = cat("ps_script")
	psClassicStart   = cat("ps_classic_start")
	psClassicProv    = cat("ps_classic_provider_start")
	psClassicScript  = cat("ps_classic_script")
	antivirus        = cat("antivirus")
	defenderAVEvents = map[int]bool{1006: true, 1007: true, 1008: true, 1009: true, 1010: true,
		1011: true, 1012: true, 1017: true, 1018: true, 1019: true, 1115: true, 1116: true}
)

// Classify sets ev.Product to "windows" and ev.Services and ev.Categories from
// the Channel and EventID fields (and EventType for Sysmon 12), and adds the
// field aliases SigmaHQ's mapping expects: Security 4688 gets Image and
// ParentImage (copies of NewProcessName and ParentProcessName), Defender
// threat events get Signature and Filename (copies of ThreatName and Path).
// Original fields are kept; an alias is not added when the event already has
// a field of that name. The slices stored are shared; do not modify them.
// Classify allocates nothing beyond growing ev.Fields for aliases.
func Classify(ev *event.Event) {
	ev.Product = Product
	ev.Services, ev.Categories = nil, nil
	channel, _ := ev.Get("Channel")
	info, ok := lookupChannel(channel)
	if !ok {
		return
	}
	ev.Services = info.services
	idText, _ := ev.Get("EventID")
	id, err := strconv.Atoi(idText)
	if err != nil {
		return
	}
	switch info.kind {
	case kindSecurity:
		if id == 4688 {
			ev.Categories = processCreation
			alias(ev, "Image", "NewProcessName")
			alias(ev, "ParentImage", "ParentProcessName")
		}
	case kindSysmon:
		ev.Categories = sysmonCategories[id]
		if id == 12 {
			switch t, _ := ev.Get("EventType"); t {
			case "CreateKey":
				ev.Categories = registryAdd
			case "DeleteKey", "DeleteValue":
				ev.Categories = registryDelete
			}
		}
	case kindPowerShell:
		switch id {
		case 4103:
			ev.Categories = psModule
		case 4104:
			ev.Categories = psScript
		}
	case kindPowerShellClassic:
		switch id {
		case 400:
			ev.Categories = psClassicStart
		case 600:
			ev.Categories = psClassicProv
		case 800:
			ev.Categories = psClassicScript
		}
	case kindDefender:
		if defenderAVEvents[id] {
			ev.Categories = antivirus
			alias(ev, "Signature", "ThreatName")
			alias(ev, "Filename", "Path")
		}
	}
}

func lookupChannel(channel string) (channelInfo, bool) {
	if info, ok := channels[channel]; ok {
		return info, true
	}
	if channel == "" {
		return channelInfo{}, false
	}
	for name, info := range channels { // rare: channel names differing in case
		if strings.EqualFold(name, channel) {
			return info, true
		}
	}
	return channelInfo{}, false
}

func alias(ev *event.Event, name, from string) {
	if _, ok := ev.Get(name); ok {
		return
	}
	if v, ok := ev.Get(from); ok {
		ev.Add(name, v)
	}
}
