package net.imglib2.algorithm;

/** API stub (imglib2-algorithm 0.18.1, net/imglib2/algorithm/Benchmark.java; not on Maven Central). */
public interface Benchmark {

    long getProcessingTime();
}
