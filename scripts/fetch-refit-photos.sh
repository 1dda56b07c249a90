#!/usr/bin/env bash
# More real pictures, for refitting layers to their quantized inputs (calibration's --refit): 68 from five
# Debian packages (OpenCV's other sample images and scene-text samples; UKUI, Lomiri and KDE Plasma
# wallpapers), none of them among scripts/fetch-photos.sh's 57. Extracted into the folder given (default .cache/photos-refit). Needs apt-get
# (the .debs are downloaded, not installed).
set -euo pipefail
out=${1:-.cache/photos-refit}
mkdir -p "$out"
if [ "$(ls "$out" | wc -l)" -ge 68 ]; then echo "$out: pictures already there"; exit 0; fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
apt-get download opencv-doc ukui-wallpapers lomiri-wallpapers-16.04 lomiri-wallpapers-20.04 plasma-workspace-wallpapers 2>&1 | grep -v '^W:' || true
for deb in *.deb; do dpkg -x "$deb" x; done
cd - >/dev/null
ocv=$work/x/usr/share/doc/opencv-doc/examples
for f in Blender_Suzanne1.jpg Blender_Suzanne2.jpg aloeR.jpg basketball1.png basketball2.png box.png box_in_scene.png cards.png \
  chicky_512.png ela_modified.jpg graf1.png graf3.png left.jpg left02.jpg licenseplate_motion.jpg pca_test1.jpg right.jpg \
  right01.jpg right02.jpg rubberwhale1.png rubberwhale2.png smarties.png starry_night.jpg text_motion.jpg; do
  cp "$ocv/data/$f" "$out/ocv-$f"
done
for i in 1 2 3 4 5 6; do cp "$ocv/text/scenetext0$i.jpg" "$out/ocvtext-scenetext0$i.jpg"; done
for f in 2004default.jpg calla.png city.png desert.png firstgeneration.jpg focal-ubuntukylin.png goldfish.png rhythm.jpg \
  rollpaper.png string.jpg the-mouse.jpg; do
  cp "$work/x/usr/share/backgrounds/$f" "$out/bg-$f"
done
for f in Bridge_by_Sander_Klootwijk Dragonfly_by_Bolly Picture_0B_by_freespace Picture_1A_by_freespace Wine_by_Jakkub_Mede \
  aitzgorri_by_Aitzol_Berasategi analogpattern_by_Peter_Nerlich free_by_Peter_Nerlich friends_by_Aitzol_Berasategi \
  greentock_by_Peter_Nerlich life_by_Aitzol_Berasategi picosdeeuropa_by_Aitzol_Berasategi seeding_by_Clements_Engelhardt \
  sunset_by_Aitzol_Berasategi umang_by_Abhishek_Mudgal Fossa_by_Jasper_Roks Infinite-Sea_by_Aury88 Kleiber_by_Lukas_Baubkus \
  Painting-Colors_by__herobrine7gamer; do
  cp "$work/x/usr/share/backgrounds/$f.jpg" "$out/lomiri-$f.jpg"
done
# Plasma wallpapers that scripts/fetch-photos.sh does not take, one size each.
for p in Autumn/1920x1080.jpg ColorfulCups/2560x1600.jpg MilkyWay/1080x1920.png SafeLanding/1622x2880.jpg Shell/720x1440.jpg \
  Flow/720x1440.jpg Honeywave/1080x1920.jpg PastelHills/1920x1080.jpg; do
  cp "$work/x/usr/share/wallpapers/${p%%/*}/contents/images/${p#*/}" "$out/plasma-${p%%/*}.${p##*.}"
done
echo "$out: $(ls "$out" | wc -l) pictures"
