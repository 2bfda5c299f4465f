package net.imglib2.algorithm;

/** API stub (imglib2-algorithm 0.18.1, net/imglib2/algorithm/OutputAlgorithm.java; not on Maven Central). */
public interface OutputAlgorithm<O> extends Algorithm {

    O getResult();
}
