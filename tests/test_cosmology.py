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


@pytest.mark.parametrize("omega_m", [0.315, 0.25, 0.35])
def test_comoving_distance_within_1e8_relative_of_astropy_at_every_redshift(omega_m):
    """Low redshifts included: interpolating d(z) itself on the grid erred by 1e-5 relative at
    z = 1e-6 (a chord through d(0) = 0), 1.5e-6 at 1e-4 and 1e-7 at 1e-3."""
    ref = FlatLambdaCDM(H0=100, Om0=omega_m, Tcmb0=0)
    z = np.array([1e-6, 1e-4, 1e-3, 0.1, 2.0, 10.0])
    d = cosmology.comoving_distance(z, omega_m)
    np.testing.assert_allclose(d, ref.comoving_distance(z).value, rtol=1e-8, atol=0)
    many = np.concatenate([np.geomspace(1e-12, 10, 20001),
                           np.random.default_rng(4).uniform(0, 10, 20000)])
    np.testing.assert_allclose(cosmology.comoving_distance(many, omega_m),
                               ref.comoving_distance(many).value, rtol=1e-8, atol=0)
    assert cosmology.comoving_distance(0.0, omega_m) == 0.0
    assert cosmology.comoving_distance(np.zeros(3), omega_m).tolist() == [0.0, 0.0, 0.0]


def test_comoving_distance_agrees_with_a_quadrature_where_astropy_is_exact():
    """Against an independent integral of 1/E(z) (scipy quad), not only against astropy."""
    from scipy.integrate import quad

    om = 0.315
    for z in (1e-5, 1e-4, 1e-3, 0.05, 0.24, 1.0, 6.4):
        q = 2997.92458 * quad(lambda x: 1 / np.sqrt(om * (1 + x) ** 3 + 1 - om), 0, z,
                              epsabs=0, epsrel=1e-13)[0]
        assert cosmology.comoving_distance(z, om) == pytest.approx(q, rel=1e-10, abs=0), z


def test_wrap_ra_is_0_360_with_positive_zero():
    ra = cosmology.wrap_ra([360.0, -0.0, -1e-20, 720.5, -90.0, 359.5, np.nan])
    assert ra[:6].tolist() == [0.0, 0.0, 0.0, 0.5, 270.0, 359.5] and np.isnan(ra[6])
    assert not np.signbit(ra[:6]).any()


def test_off_grid_redshifts_give_astropy_values_without_numpy_warnings():
    """Huge, infinite and NaN redshifts are clamped before the grid arithmetic: no overflow
    warning (the book turns warnings into errors); NaN stays NaN."""
    import warnings

    z = np.array([np.nan, np.inf, 1e200, 3.4e38, -0.5, 10.5])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        d = cosmology.comoving_distance(z)
    ref = FlatLambdaCDM(H0=100, Om0=cosmology.OMEGA_M_DEFAULT, Tcmb0=0)
    assert np.isnan(d[0])
    np.testing.assert_allclose(d[1:], ref.comoving_distance(z[1:]).value, rtol=1e-12)
