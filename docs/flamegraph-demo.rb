# The Ruby program behind docs/ruby-flamegraph.svg (README, "Flame
# graphs"): Ruby methods, blocks, C methods (JSON, Array#sort, String#*),
# recursion and the GC, for `rbtrace profile --unwind dwarf --svg`.
require 'json'

class Report
  def initialize(n) = @rows = Array.new(n) { |i| { 'id' => i, 'name' => "row #{i}" * 4, 'score' => (i * 7919) % 1000 } }

  def render = JSON.generate(@rows)

  def parse(text) = JSON.parse(text)

  def ranked = @rows.sort_by { |r| -r['score'] }
end

def fib(n) = n < 2 ? n : fib(n - 1) + fib(n - 2)

deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + (ARGV[0] || 5).to_f
report = Report.new(2000)
while Process.clock_gettime(Process::CLOCK_MONOTONIC) < deadline
  report.parse(report.render)
  report.ranked
  fib(20)
end
