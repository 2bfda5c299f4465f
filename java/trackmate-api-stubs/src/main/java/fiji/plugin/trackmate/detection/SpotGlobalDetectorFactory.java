package fiji.plugin.trackmate.detection;

import java.util.Map;
import net.imagej.ImgPlus;
import net.imglib2.Interval;
import net.imglib2.type.NativeType;
import net.imglib2.type.numeric.RealType;

/** API stub (TrackMate 8.1.6, fiji/plugin/trackmate/detection/SpotGlobalDetectorFactory.java): signatures only. */
public interface SpotGlobalDetectorFactory<T extends RealType<T> & NativeType<T>> extends SpotDetectorFactoryBase<T> {

    SpotGlobalDetector<T> getDetector(final ImgPlus<T> img, final Map<String, Object> settings,
            final Interval interval);
}
