# Oracle for the exporter's Ruby families (test/e2e/exporter-ruby.test.ts):
# between two lines on stdin, a workload whose collections Ruby counts
# (GC.count, GC.stat major/minor deltas) and whose C method calls a
# TracePoint(:c_call) counts. Waits on stdin before and after, so the test
# scrapes while the process makes no call. Prints JSON lines.
require 'json'

STDOUT.sync = true
counts = {}
tp = TracePoint.new(:c_call) do |t|
  h = (counts[t.defined_class] ||= {})
  h[t.method_id] = (h[t.method_id] || 0) + 1
end
puts JSON.generate({ up: GC.count })
STDIN.gets
s0 = GC.stat
tp.enable
5.times { GC.start }                   # major, method, force
5.times { GC.start(full_mark: false) } # minor, method
x = nil
300_000.times { |i| x = [i, i.to_s] }  # minors by newobj
doc = { 'list' => (1..50).map { |i| { 'id' => i, 'name' => "item #{i}" } } }
40.times { JSON.parse(JSON.generate(doc)) }
200.times { |i| 12.gcd(i); 'abc'.reverse; [1, 2, 3].rotate(i) }
tp.disable
s1 = GC.stat
puts 'done'
STDIN.gets
puts JSON.generate({
  gcs: s1[:count] - s0[:count], major: s1[:major_gc_count] - s0[:major_gc_count], minor: s1[:minor_gc_count] - s0[:minor_gc_count],
  # Class names as Ruby's probes give them: a singleton class by its object.
  calls: counts.flat_map do |k, h|
    name = k.singleton_class? ? k.inspect.sub(/\A#<Class:(.*)>\z/, '\1') : k.name
    h.map { |m, n| ["#{name}##{m}", n] }
  end.to_h
})
STDIN.gets
