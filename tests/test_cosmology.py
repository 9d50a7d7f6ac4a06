"""desivoids.cosmology against astropy directly (flat LCDM, H0 = 100, Tcmb0 = 0)."""
import numpy as np
import pytest
from astropy.cosmology import FlatLambdaCDM

from desivoids import cosmology


@pytest.mark.parametrize("omega_m", [0.315, 0.25, 0.35])
def test_comoving_distance_matches_astropy(omega_m):
    ref = FlatLambdaCDM(H0=100, Om0=omega_m, Tcmb0=0)
    z = np.concatenate([np.random.default_rng(1).uniform(0, 7, 2000), [0.0, 0.24, 6.4, 10.0]])
    d = cosmology.comoving_distance(z, omega_m)
    np.testing.assert_allclose(d, ref.comoving_distance(z).value, rtol=0, atol=1e-5)


def test_dlimu_of_desivast():
    # DESIVAST: ZLIMU = 0.24 <-> DLIMU ~ 677 Mpc/h at Omega_m = 0.315
    assert cosmology.comoving_distance(0.24) == pytest.approx(677.40, abs=0.01)


def test_outside_the_grid_falls_back_to_astropy():
    ref = FlatLambdaCDM(H0=100, Om0=0.315, Tcmb0=0)
    z = np.array([-0.01, 12.0])
    np.testing.assert_allclose(cosmology.comoving_distance(z), ref.comoving_distance(z).value,
                               rtol=1e-10)
    assert np.isnan(cosmology.comoving_distance(np.nan))
    assert isinstance(cosmology.comoving_distance(0.1), float)


def test_z_at_distance_inverts():
    z = np.random.default_rng(2).uniform(0, 6, 1000)
    back = cosmology.z_at_distance(cosmology.comoving_distance(z))
    np.testing.assert_allclose(back, z, atol=1e-7)
    assert np.isnan(cosmology.z_at_distance(-1.0))
    assert np.isnan(cosmology.z_at_distance(1e5))


def test_xyz_roundtrip_and_ra_range():
    rng = np.random.default_rng(3)
    ra = rng.uniform(0, 360, 5000)
    dec = np.degrees(np.arcsin(rng.uniform(-1, 1, 5000)))
    r = rng.uniform(1, 700, 5000)
    x, y, z = cosmology.radec_to_xyz(ra, dec, r)
    ra2, dec2, r2 = cosmology.xyz_to_radec_r(x, y, z)
    assert np.all((ra2 >= 0) & (ra2 < 360))
    d_ra = (ra2 - ra + 180) % 360 - 180
    np.testing.assert_allclose(d_ra, 0, atol=1e-9)
    np.testing.assert_allclose(dec2, dec, atol=1e-9)
    np.testing.assert_allclose(r2, r, rtol=1e-12)
    # the convention of science.md: x = r cos(dec) cos(ra), y = r cos(dec) sin(ra), z = r sin(dec)
    x, y, z = cosmology.radec_to_xyz(90.0, 0.0, 2.0)
    np.testing.assert_allclose([x, y, z], [0, 2, 0], atol=1e-12)
    assert cosmology.xyz_to_radec_r(1.0, -1e-18, 0.0)[0] < 360.0
