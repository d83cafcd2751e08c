# Oracle for the exporter's rubies without USDT probes
# (test/e2e/exporter-ruby-vm.test.ts): between two lines on stdin, a known
# number of major and minor collections (GC.start with full_mark true and
# false, and a few by allocation), with GC.stat read into hashes made
# beforehand so that reading it allocates nothing (an allocation may start a
# collection outside the window). Prints "up" (after BOOT_GCS collections
# of its own, to tell counting from its start from counting from the first
# reading; plus one, see below), "done", then its deltas and its GC.count as
# JSON.
require 'json'

MAJORS = Integer(ARGV[0] || 5)
MINORS = Integer(ARGV[1] || 7)
BOOT_GCS = Integer(ARGV[2] || 0)
DONE = "done\n".freeze
s0 = {}
s1 = {}
STDOUT.sync = true
# GC.start sweeps at once: no lazy sweep is left for an allocation outside
# the window to finish (its time would be counted by the exporter, not here).
(BOOT_GCS + 1).times { GC.start }
puts 'up'
STDIN.gets
GC.stat(s0)
x = nil
100_000.times { |i| x = [i, i.to_s] } # minors by allocation (swept lazily, finished by the next GC.start)
MAJORS.times { GC.start(full_mark: true) }
MINORS.times { GC.start(full_mark: false) } # the last one sweeps at once: nothing left after the window
GC.stat(s1)
STDOUT.write(DONE)
STDIN.gets
d = ->(k) { s1[k] - s0[k] }
puts JSON.generate({
  count: d[:count], major: d[:major_gc_count], minor: d[:minor_gc_count],
  marking_ms: d[:marking_time], sweeping_ms: d[:sweeping_time], gc_count: s1[:count],
})
STDIN.gets
