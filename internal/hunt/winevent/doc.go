// Package winevent normalises Windows event log records into Vigil's
// canonical event.Event, so that an event read from an EVTX file and the same
// event read from its JSON rendering carry the same fields, and SigmaHQ rules
// match both unmodified.
//
// It is imported by the hunt readers (hunt/evtx, and the JSON reader) and by
// anything else that turns Windows events into event.Event; it imports only
// the standard library and internal/event.
//
// # Flattening
//
// The nested Event XML becomes a flat field list named the way SigmaHQ rules
// name fields:
//
//   - System children: the element text under the element name (EventID,
//     Channel, …) and every attribute as Element_Attribute (Provider_Name,
//     TimeCreated_SystemTime, Security_UserID, EventID_Qualifiers, …).
//   - EventData: <Data Name="X">v</Data> becomes field X; an unnamed <Data>
//     becomes a field called Data (repeated, one per element); <Binary>
//     becomes Binary. Attributes of EventData itself are dropped.
//   - UserData and any other section: every leaf element under its own name,
//     its attributes as Element_Attribute.
//   - xmlns attributes are dropped everywhere.
//   - A value that is only a null substitution (JSON null) leaves the field
//     out; an empty leaf element outside System is an empty string; an array
//     value becomes one field per item.
//
// Flattener is the one implementation of these rules; the EVTX reader drives
// it from BinXML and FromJSON drives it from decoded JSON.
//
// # Classification
//
// Classify places an event in the Sigma log source taxonomy from its Channel
// and EventID (see classify.go for the table, derived from SigmaHQ's
// tests/thor.yml) and adds the field aliases SigmaHQ's mapping expects
// (Security 4688 Image/ParentImage, Defender ThreatName/Path).
//
// # Concurrency
//
// A Flattener is not safe for concurrent use; use one per goroutine.
// Classify and FromJSON keep no state between calls except read-only tables
// and may be called from any number of goroutines. The Services and
// Categories slices that Classify stores are shared and must not be modified.
package winevent
