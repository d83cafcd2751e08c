# Oracle for rbtrace rubycalls: count calls per Class#method with a
# TracePoint(:call, :c_call) around a workload (WORK=1) or around nothing
# (WORK=0), then dump the counts. Class names as Ruby's probes name them:
# a singleton class by the object it is attached to.
require 'json'

class Shape
  def initialize(n) = @n = n
  def area = @n * 2
  def self.build(n) = new(n)
end
class Square < Shape
  def area = super + 1
end
module Helper
  def self.fib(n) = n < 2 ? n : fib(n - 1) + fib(n - 2)
  def twice(x) = [x, x]
end
class Square
  include Helper
end

def workload
  doc = { 'list' => (1..50).map { |i| { 'id' => i, 'name' => "item #{i}" } } }
  20.times { JSON.parse(JSON.generate(doc)) }
  shapes = 30.times.map { |i| i.even? ? Shape.build(i) : Square.new(i) }
  shapes.each { |s| s.area }
  shapes.grep(Square).each { |s| s.twice(1) }
  Helper.fib(12)
  5.times { begin; Integer('x'); rescue ArgumentError; end }
  %w[b a c].sort.map(&:upcase).join(',')
end

counts = {}
tp = TracePoint.new(:call, :c_call) do |t|
  h = (counts[t.defined_class] ||= {})
  m = t.method_id
  h[m] = (h[m] || 0) + 1
end
work = ENV['WORK'] == '1'
tp.enable
workload if work
tp.disable
out = []
counts.each do |k, h|
  name = k.singleton_class? ? k.inspect.sub(/\A#<Class:(.*)>\z/, '\1') : k.name
  h.each { |m, n| out << "#{name}##{m} #{n}" }
end
File.write(ENV['RC_OUT'], out.join("\n") + "\n")
