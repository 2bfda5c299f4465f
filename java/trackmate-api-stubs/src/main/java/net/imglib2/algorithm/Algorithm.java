package net.imglib2.algorithm;

/** API stub (imglib2-algorithm 0.18.1, net/imglib2/algorithm/Algorithm.java; not on Maven Central). */
public interface Algorithm {

    boolean checkInput();

    boolean process();

    String getErrorMessage();
}
