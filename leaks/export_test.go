package leaks

// PackedScans counts the pushes scanned straight from their packs.
var PackedScans = &packedScans
