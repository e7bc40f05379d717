/**
 * What to tell an operator whose gateway may run on one core only (its CPU affinity: taskset, a cpuset, docker
 * --cpuset-cpus) while V8 keeps its garbage collector's threads: those threads can then only run by taking the core
 * from the event loop that sends every call's RTP, a scheduler slice at a time. In the benchmark, pinned to one core at
 * 200 calls, the loop's longest delay was 6.5-26 ms with them and 3.1-6.7 ms without (docs/benchmarks/
 * clock-under-load.md §15). Undefined when there is nothing to say.
 */
export function oneCoreGcAdvice(cores: number, execArgv: readonly string[]): string | undefined {
  if (cores > 1 || execArgv.includes('--single-threaded-gc')) return undefined;
  return (
    'this process may use one CPU core only, and V8 garbage-collects on threads of its own that take that core from ' +
    "the calls' media clock: start it with `node --single-threaded-gc dist/plugin/main.js` (README, One core)"
  );
}
