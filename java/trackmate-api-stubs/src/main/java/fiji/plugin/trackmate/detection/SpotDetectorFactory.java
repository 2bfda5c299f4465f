package fiji.plugin.trackmate.detection;

import net.imglib2.type.NativeType;
import net.imglib2.type.numeric.RealType;

/**
 * API stub (TrackMate 8.1.6, fiji/plugin/trackmate/detection/SpotDetectorFactory.java). Only the type is needed: it
 * is the {@code @Plugin} type under which TrackMate discovers detector factories, global ones included. Its
 * per-frame {@code getDetector(ImgPlus, Map, Interval, int)} is left out because the adapter never implements it.
 */
public interface SpotDetectorFactory<T extends RealType<T> & NativeType<T>> extends SpotDetectorFactoryBase<T> {
}
