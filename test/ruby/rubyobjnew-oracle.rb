# Oracle for rbtrace rubyobjnew: with GC off, ObjectSpace.trace_object_allocations
# records the class and allocation site (allocation_sourcefile/line) of every
# object the segments below allocate, and GC.stat(:total_allocated_objects)
# is read around each segment's second call (its first one fills the
# call-site caches, hidden objects GC.stat counts and ObjectSpace does not). Each segment is one line, with its own count,
# so a row of rbtrace's (class, path:line) is matched to one segment.
# Output (to RO_OUT): "site LINE CLASS COUNT" per class and line, and
# "delta LINE N" per segment.
require 'objspace'

class Foo; end
class Bar
  def initialize(v) = @v = v
end

SEGMENTS = [
  -> { 1000.times { } }, # nothing: warms the loop below (its first pass makes call-site caches)
  -> { 1100.times { "abcd" } },
  -> { 1200.times { |i| [i, i, i] } },
  -> { 1300.times { [1, 2, 3, 4, 5] } },
  -> { 1400.times { |i| { a: i, b: i } } },
  -> { 1500.times { { a: 1, b: 2, c: 3 } } },
  -> { 1600.times { Foo.new } },
  -> { 1700.times { |i| Bar.new(i) } },
  -> { 1800.times { |i| Array.new(2) } },
  -> { 1900.times { |i| "s#{i}".to_sym } },
  -> { 1000.times { } }, # nothing: the segments' own overhead (a hidden object per call)
].freeze
LINES = SEGMENTS.map { |s| s.source_location[1] }

out = []
GC.start
GC.disable
ObjectSpace.trace_object_allocations_start
SEGMENTS.each_with_index do |seg, i|
  seg.call # first call: the call sites' caches (T_IMEMO, counted by GC.stat only) are made here
  before = GC.stat(:total_allocated_objects)
  seg.call
  out << "delta #{LINES[i]} #{GC.stat(:total_allocated_objects) - before}"
end
ObjectSpace.trace_object_allocations_stop
sites = Hash.new(0)
ObjectSpace.each_object do |o|
  next unless ObjectSpace.allocation_sourcefile(o) == __FILE__
  line = ObjectSpace.allocation_sourceline(o)
  sites[[line, o.class.name]] += 1 if LINES.include?(line)
end
sites.each { |(line, klass), n| out << "site #{line} #{klass} #{n}" }
GC.enable
File.write(ENV.fetch('RO_OUT', '/dev/stdout'), out.join("\n") + "\n")
