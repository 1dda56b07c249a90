#!/usr/bin/env bash
# Real photographs for validating imported models: 57 pictures from four Debian packages
# (sample data of OpenCV and scikit-image, MATE and KDE Plasma wallpapers), extracted into
# the folder given (default .cache/photos). Needs apt-get (the .debs are downloaded, not installed).
set -euo pipefail
out=${1:-.cache/photos}
mkdir -p "$out"
if [ "$(ls "$out" | wc -l)" -ge 57 ]; then echo "$out: photos already there"; exit 0; fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
apt-get download mate-backgrounds opencv-doc plasma-workspace-wallpapers python3-skimage 2>&1 | grep -v '^W:' || true
for deb in *.deb; do dpkg -x "$deb" x; done
cd - >/dev/null
ocv=$work/x/usr/share/doc/opencv-doc/examples
for f in aero1 aero3 aloeL apple baboon board building butterfly ela_original fruits home left01 left07 leuvenA leuvenB messi5 orange right05 squirrel_cls stuff text_defocus; do
  cp "$ocv/data/$f.jpg" "$out/opencv-$f.jpg"
done
cp "$ocv/alphamat/input_images/plant.jpg" "$out/opencv-plant.jpg"
for f in Aqua Blinds Dune FreshFlower Garden GreenMeadow LadyBird RainDrops Storm TwoWings Wood YellowFlower; do
  cp "$work/x/usr/share/backgrounds/mate/nature/$f.jpg" "$out/mate-$f.jpg"
done
for d in BytheWater ColdRipple DarkestHour EveningGlow FallenLeaf Grey Kite OneStandsOut Path summer_1am; do
  cp "$work/x/usr/share/wallpapers/$d/contents/screenshot.jpg" "$out/plasma-$d.jpg"
done
sk=$work/x/usr/lib/python3/dist-packages/skimage/data
for f in astronaut.png brick.png camera.png chelsea.png coffee.png coins.png grass.png gravel.png hubble_deep_field.jpg motorcycle_left.png rocket.jpg moon.png retina.jpg; do
  cp "$sk/$f" "$out/skimage-$f"
done
echo "$out: $(ls "$out" | wc -l) photos"
