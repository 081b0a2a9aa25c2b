package winevent

// KnownServices lists every service of the channel table, for tests.
func KnownServices() map[string]bool {
	m := map[string]bool{}
	for _, info := range channels {
		for _, s := range info.services {
			m[s] = true
		}
	}
	return m
}
