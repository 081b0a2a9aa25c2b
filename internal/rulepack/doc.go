// Package rulepack installs, lists and switches Sigma rule packs: third-party
// rule sets (SigmaHQ's release archive by default, or any directory or zip
// for offline sites) kept under the server's data directory beside the
// operator's own rules.
//
// Only cmd/vigil imports rulepack: the CLI installs and switches packs, and
// the server adds EnabledPaths to the rule paths it gives ruleset. It reads
// and writes files and, for URL sources, makes one HTTP request with the
// client it is given; it keeps no global state.
//
// # Layout on disk
//
//	DIR/rules/packs/<name>/pack.json     the manifest (below)
//	DIR/rules/packs/<name>/rules…/…yml   the pack's rule files, paths as in the source
//	DIR/rules/packs/<name>/LICENSE…      licence, readme and VERSION files, as shipped
//	DIR/rules/packs/.new-<name>-*/       an install in progress (removed when it ends)
//	DIR/rules/packs/.download-*.zip      a download in progress (likewise)
//
// A pack name is 1 to 64 characters from [a-z0-9._-], starting with a letter
// or digit. Directories starting with "." are never packs.
//
// # What is installed
//
// A zip whose entries all sit under one top directory (GitHub's source
// archives) has that directory stripped, unless its name starts with
// "rules". Then, if the source has top-level directories named rules*
// (SigmaHQ's layout), only the .yml and .yaml files under them are rule
// files; otherwise every .yml and .yaml file is, except under directories
// whose name starts with ".". Top-level files named LICENSE*, LICENCE*,
// COPYING*, NOTICE*, DRL*, README* (no extension or .md, .txt, .rst) and
// VERSION are copied too. Nothing else is extracted.
//
// Every entry is checked before anything is written: an absolute path, a
// ".." element, a backslash, a symbolic link or any other non-regular file
// refuses the whole source (ErrUnsafe), as do more than Options.MaxFiles
// files to extract or more than Options.MaxSize bytes of them (ErrTooLarge).
// Files are written through an os.Root opened on the new pack directory, so
// the kernel keeps them inside it even if a check were wrong.
//
// # pack.json
//
// A JSON object, written once per install and rewritten whole (temporary file,
// then rename) when the pack is enabled or disabled:
//
//	format        1; a reader refuses a larger number
//	name          the pack name (the directory's name)
//	source        the URL, directory or zip it was installed from
//	version       the first of: the first line of a top-level VERSION file;
//	              the archive's stripped top directory; the release tag of a
//	              GitHub URL (…/releases/download/<tag>/…, also when reached
//	              through a redirect from …/releases/latest/…); the install
//	              date (UTC, YYYY-MM-DD)
//	version_from  "VERSION file", "top directory", "release tag" or "install date"
//	license       the licence's short name, e.g. "DRL-1.1" (SigmaHQ's rules
//	              are under the Detection Rule License 1.1), "MIT",
//	              "Apache-2.0", or "unknown"
//	license_files the licence files copied, relative to the pack directory
//	sha256        hex SHA-256 of the archive as downloaded or read; for a
//	              directory source, of the sha256sum-style listing
//	              "<hex sha256 of file>  <slash path>\n" of every installed
//	              file, sorted by path
//	installed_at  RFC 3339 time of the install
//	rules         rule files installed
//	loaded        rules that parsed and compiled (sigma.LoadPaths, sigma.NewEngine)
//	rejected      rule documents that did not
//	enabled       whether the server loads the pack
//
// # Concurrency and atomicity
//
// The functions are safe to call from several goroutines and processes. An
// install builds the new pack in a temporary directory beside the old one,
// validates it, and only then swaps it in: on Linux with one
// renameat2(RENAME_EXCHANGE), so a reader sees the old pack or the new one,
// never neither; elsewhere with two renames, between which the pack is briefly
// absent. Two installs of the same pack at once both complete and the last to
// swap wins. The enabled flag is carried over from the pack being replaced
// (re-read just before the swap); a new pack starts enabled.
package rulepack
